#!/bin/sh
# Installs this airlock release kit: install.sh [--prefix DIR] [--no-systemd]
#
# Copies the kit to PREFIX (default /opt/airlock): PREFIX/bin/airlock runs airlock with the Node
# in PREFIX/runtime, so the site needs no Node, no npm and no network. Run again (from the same or
# a newer kit) to upgrade in place: the kit's files are replaced whole (a running airlock keeps the
# files it opened), PREFIX/mirror.yml and anything else in PREFIX are left as they are.
#
# With systemd (and without --no-systemd): the airlock system user, /etc/airlock/mirror.yml and
# airlock.env (each only when missing) and /etc/systemd/system/airlock.service for this PREFIX.
# It enables and starts nothing. Any failure: one line on stderr and a non-zero exit.
set -eu

die() { echo "install.sh: $*" >&2; exit 1; }
usage() { echo "install.sh: $* (usage: install.sh [--prefix DIR] [--no-systemd])" >&2; exit 2; }
# Runs a command quietly; on failure, dies with the first line it wrote to stderr.
run() {
  _err=$("$@" 2>&1 >/dev/null) && return 0
  die "$(printf '%s\n' "${_err:-$* failed}" | head -n 1)"
}

prefix=/opt/airlock
systemd=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --no-systemd) systemd=no; shift ;;
    -h|--help) echo "usage: install.sh [--prefix DIR] [--no-systemd]"; exit 0 ;;
    *) usage "unknown argument $1" ;;
  esac
done
[ -n "$prefix" ] || usage "--prefix is empty"
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
prefix=${prefix%/}
[ -n "$prefix" ] || usage "--prefix / is not a place for airlock"

kit=$(cd "$(dirname "$0")" && pwd)
for f in VERSION SHA256SUMS bin/airlock runtime/node dist/cli/main.js systemd/airlock.service mirror.yml; do
  [ -e "$kit/$f" ] || die "$kit is not a complete airlock kit: $f is missing"
done
version=$(sed -n 's/^airlock //p' "$kit/VERSION")
command -v sha256sum >/dev/null 2>&1 || die "sha256sum (coreutils) is missing"
_bad=$(cd "$kit" && sha256sum -c --quiet SHA256SUMS 2>&1) || die "the kit is damaged: $(printf '%s\n' "$_bad" | head -n 1)"

if [ "$systemd" = auto ]; then
  # sd_booted(): systemd is the init system exactly when this directory exists.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemd=yes; else systemd=absent; fi
fi
if [ "$systemd" = yes ]; then
  [ "$(id -u)" = 0 ] || die "installing the systemd unit needs root (or pass --no-systemd)"
  case "$prefix" in *[[:space:]]*) die "a systemd unit cannot run airlock from a path with spaces ($prefix); pass --no-systemd" ;; esac
fi

[ -e "$prefix" ] && [ ! -d "$prefix" ] && die "$prefix exists and is not a directory"
if [ -d "$prefix" ] && [ "$(cd "$prefix" && pwd -P)" = "$(cd "$kit" && pwd -P)" ]; then
  die "the kit is already at $prefix: extract it elsewhere and install from there"
fi
_err=$(mkdir -p "$prefix" 2>&1) || die "cannot create $prefix: ${_err##*: }"
new="$prefix/.airlock-install.$$"
old="$prefix/.airlock-previous.$$"
_err=$(mkdir "$new" 2>&1) || die "cannot write to $prefix: ${_err##*: }"
trap 'rm -rf "$new"' EXIT

# Copy into PREFIX first (same file system), then rename each entry into place: an upgrade never
# writes over a file in use (the Node binary of a running airlock) and leaves no half-copied tree.
entries="bin dist node_modules runtime systemd install.sh package.json package-lock.json README.md SHA256SUMS VERSION"
for e in $entries; do run cp -a "$kit/$e" "$new/$e"; done
esc=$(printf '%s' "$prefix" | sed 's/[\\#&]/\\&/g')
run sed -i "s#/opt/airlock#$esc#g" "$new/systemd/airlock.service"
# PREFIX/SHA256SUMS checks what was installed: the unit as rewritten, not mirror.yml (the operator's).
_unit=$(cd "$new" && sha256sum systemd/airlock.service) || die "cannot hash $new/systemd/airlock.service"
run sh -c 'grep -v -e "  mirror.yml\$" -e "  systemd/airlock.service\$" "$1/SHA256SUMS" >"$1/SHA256SUMS.new" && printf "%s\n" "$2" >>"$1/SHA256SUMS.new" && mv "$1/SHA256SUMS.new" "$1/SHA256SUMS"' sh "$new" "$_unit"
# The kit's Node must run here (glibc new enough, the right architecture) before anything is replaced.
_got=$("$new/bin/airlock" --version 2>&1) || die "this machine cannot run the kit's Node ($(sed -n 's/^glibc //p' "$kit/VERSION") needed): $(printf '%s\n' "$_got" | head -n 1)"
run mkdir "$old"
for e in $entries; do
  if [ -e "$prefix/$e" ] || [ -L "$prefix/$e" ]; then run mv "$prefix/$e" "$old/$e"; fi
  run mv "$new/$e" "$prefix/$e"
done
rm -rf "$old"
# The configuration is the operator's: written once, never replaced by an upgrade.
[ -e "$prefix/mirror.yml" ] || run cp "$kit/mirror.yml" "$prefix/mirror.yml"

if [ "$systemd" = yes ]; then
  if ! id airlock >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir /var/lib/airlock --shell /usr/sbin/nologin airlock
  fi
  run install -d -m 0755 /etc/airlock
  if [ ! -e /etc/airlock/mirror.yml ]; then
    run sh -c 'sed "s#^  root: ./data#  root: /var/lib/airlock#" "$1" >/etc/airlock/mirror.yml.new && chmod 0644 /etc/airlock/mirror.yml.new && mv /etc/airlock/mirror.yml.new /etc/airlock/mirror.yml' sh "$kit/mirror.yml"
  fi
  [ -e /etc/airlock/airlock.env ] || run install -m 0640 -o root -g airlock "$kit/systemd/airlock.env" /etc/airlock/airlock.env
  run install -m 0644 "$prefix/systemd/airlock.service" /etc/systemd/system/airlock.service
  run systemctl daemon-reload
  echo "airlock $version installed in $prefix; start it with: systemctl enable --now airlock (config /etc/airlock/mirror.yml)"
  if systemctl is-active --quiet airlock 2>/dev/null; then echo "airlock is running the previous version: systemctl restart airlock"; fi
else
  echo "airlock $version installed in $prefix; run: $prefix/bin/airlock serve --config $prefix/mirror.yml"
  [ "$systemd" = no ] || echo "systemd is not running here: no unit installed (for this prefix it is $prefix/systemd/airlock.service)"
fi
