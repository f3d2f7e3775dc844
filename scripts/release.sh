#!/usr/bin/env bash
# npm run release [-- --out DIR]: writes airlock-<version>-linux-<arch>.tar.gz (release/ by
# default), a self-contained airlock for a site with no network, no container engine and no
# Node: the Node binary running this script, dist/ built afresh, the production dependencies,
# mirror.yml, the systemd unit, bin/airlock, install.sh, VERSION and SHA256SUMS.
#
# Needs only what `npm ci` installed and never the network: node_modules is copied and pruned of
# dev dependencies (npm prune --offline), not installed again. Entries are sorted, owned by 0:0
# and dated at the last commit (or SOURCE_DATE_EPOCH), so two builds of one tree give one tarball.
set -euo pipefail
# A relative --out is taken from where the command was typed (npm run sets INIT_CWD to it).
here=${INIT_CWD:-$PWD}
cd "$(dirname "$0")/.."

die() { echo "release: $*" >&2; exit 1; }

out=$PWD/release
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    -h|--help) echo "usage: npm run release [-- --out DIR]"; exit 0 ;;
    *) die "unknown argument $1 (usage: npm run release [-- --out DIR])" ;;
  esac
done

case "$out" in /*) ;; *) out="$here/$out" ;; esac
[ -d node_modules ] || die "node_modules is missing: run npm ci first"
node=$(command -v node) || die "node is not on PATH"
node=$(readlink -f "$node")
# A Node linked against shared libnode/libuv/openssl (a distribution's own build) would not run
# where those are missing; the official builds need only the C and C++ runtimes.
if command -v ldd >/dev/null 2>&1; then
  extra=$(ldd "$node" 2>/dev/null | awk '{print $1}' | sed 's#.*/##' | grep -Ev '^(linux-vdso|linux-gate|ld-linux[-a-z0-9_]*|libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|libatomic)\.so' || true)
  [ -z "$extra" ] || die "$node needs shared libraries a site may lack ($(printf '%s' "$extra" | tr '\n' ' ')); build with an official Node binary"
fi

version=$(node -p 'require("./package.json").version')
node_version=$("$node" --version)
# The Node flags of the shebang of src/cli/main.ts, which every launcher passes.
flags=$(head -1 src/cli/main.ts | sed -n 's/^#!.*[ /]node \(.*\)$/\1/p')
[ -n "$flags" ] || die "no Node flags in the shebang of src/cli/main.ts"
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/airlock-release.XXXXXX")
partial=
trap 'rm -rf "$stage" ${partial:+"$partial"}' EXIT

# The kit's name and folder, from src/runtime/release-kit.ts (built into the stage first).
echo "release: building dist/" >&2
node_modules/.bin/tsc -p tsconfig.build.json --outDir "$stage/build" --sourceMap false
names=$(cd "$stage/build" && node --input-type=module -e 'import { releaseKitDir, releaseKitName } from "./runtime/release-kit.js"; console.log(releaseKitDir(process.argv[1]), releaseKitName(process.argv[1]))' "$version")
kitdir=${names% *}
kitname=${names#* }
kit="$stage/$kitdir"
mkdir -p "$kit/bin" "$kit/runtime" "$kit/systemd"
mv "$stage/build" "$kit/dist"
# The web console's files (plugins/ui.ts serves dist/ui beside the code).
echo "release: building the console" >&2
node scripts/build-ui.mjs --out "$kit/dist/ui" >&2 || die "building the console failed"

echo "release: production dependencies" >&2
cp package.json package-lock.json "$kit/"
cp -a node_modules "$kit/node_modules"
(cd "$kit" && npm_config_update_notifier=false npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) \
  || die "npm prune --omit=dev failed"
(cd "$kit" && npm ls --omit=dev --all --offline >/dev/null 2>&1) || die "production dependencies incomplete after pruning (npm ls --omit=dev in the kit)"
# Not packages: npm's hidden lockfile, tools' caches (.vite, .cache). And npm prune leaves the
# emptied scope folders (@types, @vitest) behind.
find "$kit/node_modules" -mindepth 1 -maxdepth 1 -name '.*' ! -name .bin -exec rm -rf {} +
find "$kit/node_modules" -mindepth 1 -maxdepth 1 -name '@*' -type d -empty -delete
for dev in $(node -p 'Object.keys(require("./package.json").devDependencies ?? {}).join(" ")'); do
  [ ! -e "$kit/node_modules/$dev" ] || die "dev dependency $dev is still in the kit's node_modules"
done

echo "release: runtime, launcher, unit" >&2
cp "$node" "$kit/runtime/node"
# Node's licence travels with it: beside bin/ in the official tarballs, under doc/ in packages.
for f in "$(dirname "$node")/../LICENSE" "$(dirname "$node")/../share/doc/node/LICENSE" /usr/share/doc/nodejs/LICENSE; do
  if [ -f "$f" ]; then cp "$f" "$kit/runtime/LICENSE"; break; fi
done
cp mirror.yml README.md "$kit/"
cp scripts/install.sh "$kit/install.sh"
cat >"$kit/bin/airlock" <<EOF
#!/bin/sh
# airlock with the Node it ships with; the flags are those of the shebang of src/cli/main.ts.
# readlink -f: PREFIX/bin/airlock may be reached through a symlink (/usr/local/bin/airlock).
self=\$(readlink -f "\$0") && kit=\${self%/bin/*}
exec "\$kit/runtime/node" $flags "\$kit/dist/cli/main.js" "\$@"
EOF
# The unit as installed under /opt/airlock, running the kit's Node; install.sh rewrites
# /opt/airlock for its --prefix. Its header's manual install steps are install.sh's work here.
{
  echo "# airlock as a systemd service, installed by the release kit's install.sh (README \"Release kit\")."
  echo "# Start it: sudo systemctl enable --now airlock (config /etc/airlock/mirror.yml, environment /etc/airlock/airlock.env)."
  sed -e '1,/^\[Unit\]/{/^\[Unit\]/!d}' \
      -e "s#^ExecStart=/usr/bin/node $flags /opt/airlock/dist/cli/main.js #ExecStart=/opt/airlock/runtime/node $flags /opt/airlock/dist/cli/main.js #" \
      systemd/airlock.service
} >"$kit/systemd/airlock.service"
grep -q '^ExecStart=/opt/airlock/runtime/node ' "$kit/systemd/airlock.service" || die "systemd/airlock.service: ExecStart is not /usr/bin/node $flags /opt/airlock/dist/cli/main.js ..."
cp systemd/airlock.env "$kit/systemd/"
chmod 0755 "$kit/bin/airlock" "$kit/install.sh" "$kit/runtime/node"

# The newest glibc symbol version the Node binary needs: the oldest glibc a site may have.
glibc=$(grep -ao 'GLIBC_2\.[0-9.]*' "$node" | sed 's/GLIBC_//' | sort -uV | tail -n 1 || true)
cat >"$kit/VERSION" <<EOF
airlock $version
node $node_version
platform linux-${kitdir##*-}
glibc ${glibc:-unknown} or newer
commit $commit
EOF

# Smoke test: the kit's own launcher, with no node on PATH (only readlink, which it uses).
mkdir "$stage/path" && ln -s "$(command -v readlink)" "$stage/path/readlink"
got=$(env -i PATH="$stage/path" "$kit/bin/airlock" --version) || die "the kit's bin/airlock --version failed"
[ "$got" = "airlock $version" ] || die "the kit's bin/airlock --version printed \"$got\", not \"airlock $version\""

(cd "$kit" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum) >"$stage/SHA256SUMS"
mv "$stage/SHA256SUMS" "$kit/SHA256SUMS"

echo "release: packing" >&2
mkdir -p "$out"
partial="$out/.$kitname.partial"
# Modes normalized (umask-independent); owner 0:0; one mtime; sorted entries; gzip without a name or time.
chmod -R u+rwX,go+rX,go-w "$kit"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=gnu \
    -C "$stage" -cf - "$kitdir" | gzip -n -6 >"$partial"
mv -f "$partial" "$out/$kitname"
partial=
size=$(du -k "$out/$kitname" | cut -f1)
echo "$out/$kitname ($(( (size + 512) / 1024 )) MiB)"
