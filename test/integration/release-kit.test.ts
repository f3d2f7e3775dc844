/**
 * The release kit (issue 20), as a disconnected site gets it: `npm run release` runs with no
 * network (a namespace with no interfaces at all), and the kit it writes is installed into an
 * empty prefix in a network namespace holding only loopback, with no `node` on PATH. The installed
 * airlock imports a bundle the dev build froze and serves it; skopeo pulls the image from it in the
 * same namespace. Also: no dev dependency in the kit, the launcher's flags, an upgrade in place,
 * the systemd unit (in a private mount namespace), and install.sh refusing a read-only prefix, an
 * unknown option, a Node that cannot run on the machine and a damaged kit, each with one line.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kitArch, parseReleaseKitName, releaseKitDir, releaseKitName } from '../../src/runtime/release-kit.js';
import { startAirlock } from '../helpers/airlock.js';
import { NODE_FLAGS, runAirlock } from '../helpers/cli.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { skopeoCopy } from '../helpers/skopeo.js';

const run = promisify(execFile);
const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };

/** What install.sh, the launcher and this test use on the site: a PATH of these alone (no node). */
const SITE_TOOLS = ['sh', 'tar', 'gzip', 'skopeo', 'sha256sum', 'mkdir', 'cp', 'mv', 'rm', 'sed', 'grep', 'head', 'id', 'readlink', 'dirname', 'cat', 'sleep', 'chmod'];

let work: string;
let kitFile: string;
let tools: string;
let holder: ChildProcess;
let image: GeneratedImage;
let bundle: string;

interface Result { code: number; stdout: string; stderr: string }

async function exec(cmd: string, args: string[], timeoutMs = 120_000): Promise<Result> {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** `sh -c script` in the site's network namespace, with only SITE_TOOLS on PATH and nothing else in the environment. */
function onSite(script: string, timeoutMs = 120_000): Promise<Result> {
  return exec('nsenter', ['-t', String(holder.pid), '-n', '--', 'env', '-i', `PATH=${tools}`, `HOME=${work}`, 'sh', '-c', script], timeoutMs);
}

async function sha256File(f: string): Promise<string> {
  return `sha256:${createHash('sha256').update(await readFile(f)).digest('hex')}`;
}

let shared: string | undefined;
/** The kit extracted once, for the tests that only read it (install.sh never writes to the kit). */
async function extracted(): Promise<string> {
  shared ??= await extract('x');
  return shared;
}

/** Extracts the kit into a fresh folder; returns the kit's own folder in it. */
async function extract(name: string): Promise<string> {
  const into = path.join(work, name);
  await mkdir(into);
  const r = await exec('tar', ['-xzf', kitFile, '-C', into]);
  expect(r.stderr).toBe('');
  return path.join(into, releaseKitDir(pkg.version));
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-release-'));
  // The release, with no network at all: everything it needs is what `npm ci` left here.
  const out = path.join(work, 'out');
  const rel = await exec('unshare', ['-n', 'env', 'npm_config_update_notifier=false', 'npm', 'run', '--silent', 'release', '--', '--out', out], 170_000);
  if (rel.code !== 0) throw new Error(`npm run release failed (${rel.code}): ${rel.stderr}`);
  kitFile = path.join(out, releaseKitName(pkg.version));
  expect(rel.stdout).toContain(kitFile);

  // A PATH of links to the site's tools only: /usr/bin here has node in it.
  tools = path.join(work, 'site-path');
  await mkdir(tools);
  for (const t of SITE_TOOLS) {
    const found = ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => path.join(d, t));
    const at = (await Promise.all(found.map((f) => stat(f).then(() => f, () => undefined)))).find(Boolean);
    if (!at) throw new Error(`${t} is not installed`);
    await symlink(at, path.join(tools, t));
  }

  // The site's network: a namespace with loopback only, held open by a sleeping process.
  holder = spawn('unshare', ['-n', 'sleep', '3600'], { stdio: 'ignore' });
  const hostNet = await readlink('/proc/self/ns/net');
  for (let i = 0; (await readlink(`/proc/${holder.pid}/ns/net`).catch(() => hostNet)) === hostNet; i++) {
    if (i > 100) throw new Error('unshare -n never entered a network namespace of its own');
    await new Promise((r) => setTimeout(r, 20));
  }
  const lo = await exec('nsenter', ['-t', String(holder.pid), '-n', 'ip', 'link', 'set', 'lo', 'up']);
  expect(lo.stderr).toBe('');

  // The bundle the site receives, frozen by the dev build from a store holding one pushed image,
  // with the kit inside (freeze --kit: what --with-airlock finds in release/).
  image = await generateImage(path.join(work, 'g-app'), { layers: 2, layerSize: 300_000, format: 'oci' });
  const store = path.join(work, 'connected-store');
  const reg = await startAirlock(`storage:\n  root: ${store}\nlog:\n  level: warn\n`);
  try {
    await skopeoCopy(image.source, `docker://${reg.host}/site/app:1.0`);
  } finally {
    await reg.stop();
  }
  const cfg = path.join(work, 'connected.yml');
  await writeFile(cfg, `storage:\n  root: ${store}\nlog:\n  level: warn\n`);
  bundle = path.join(work, 'site.tar');
  const f = await runAirlock(['freeze', '--config', cfg, '--out', bundle, '--kit', kitFile], 60_000);
  if (f.code !== 0) throw new Error(`freeze failed: ${f.stderr}`);
}, 300_000);

afterAll(async () => {
  holder?.kill('SIGKILL');
  if (work) await rm(work, { recursive: true, force: true });
});

describe('release kit', () => {
  it('is airlock-<version>-linux-<arch>.tar.gz: one folder, sorted, owned by 0:0, one mtime, VERSION and SHA256SUMS inside', async () => {
    expect(parseReleaseKitName(kitFile)).toEqual({ version: pkg.version, arch: kitArch() });
    expect(path.basename(kitFile)).toBe(`airlock-${pkg.version}-linux-${process.arch === 'x64' ? 'amd64' : process.arch}.tar.gz`);
    const list = (await exec('tar', ['-tvzf', kitFile])).stdout.trim().split('\n');
    const dir = releaseKitDir(pkg.version);
    expect(list.every((l) => l.split(/\s+/)[5]!.startsWith(`${dir}/`))).toBe(true);
    expect(new Set(list.map((l) => l.split(/\s+/)[1]))).toEqual(new Set(['0/0']));
    expect(new Set(list.map((l) => l.split(/\s+/).slice(3, 5).join(' '))).size).toBe(1);
    // --sort=name: each folder's entries in byte order.
    const names = list.map((l) => l.split(/\s+/)[5]!.replace(/\/$/, ''));
    const top = names.filter((n) => n.split('/').length === 2).map((n) => n.split('/')[1]!);
    expect(top).toEqual([...top].sort());
    expect(top).toEqual(expect.arrayContaining(['SHA256SUMS', 'VERSION', 'bin', 'dist', 'install.sh', 'mirror.yml', 'node_modules', 'package.json', 'runtime', 'systemd']));

    const kit = await extracted();
    const version = await readFile(path.join(kit, 'VERSION'), 'utf8');
    expect(version).toContain(`airlock ${pkg.version}\n`);
    expect(version).toContain(`node ${process.version}\n`);
    expect(version).toMatch(/^glibc 2\.\d+ or newer$/m);
    const sums = await exec('sh', ['-c', `cd '${kit}' && sha256sum -c --quiet --strict SHA256SUMS`], 60_000);
    expect(sums).toEqual({ code: 0, stdout: '', stderr: '' });
    const listed = (await readFile(path.join(kit, 'SHA256SUMS'), 'utf8')).trim().split('\n').map((l) => l.slice(66));
    expect(listed).toEqual(expect.arrayContaining(['runtime/node', 'bin/airlock', 'dist/cli/main.js', 'install.sh', 'systemd/airlock.service']));
  });

  it('holds its own Node, the launcher with the shebang flags, and the production dependencies only', async () => {
    const kit = await extracted();
    const modules = await readdir(path.join(kit, 'node_modules'));
    for (const dev of [...Object.keys(pkg.devDependencies), 'vitest', 'typescript', 'eslint', 'tsx', 'esbuild', '@types', '@vitest', '.vite', '.package-lock.json']) {
      await expect(stat(path.join(kit, 'node_modules', dev)), dev).rejects.toThrow();
    }
    for (const dep of Object.keys(pkg.dependencies)) expect((await stat(path.join(kit, 'node_modules', dep, 'package.json'))).isFile(), dep).toBe(true);
    expect(modules.length).toBeGreaterThan(Object.keys(pkg.dependencies).length / 2);
    expect((await exec(path.join(kit, 'runtime/node'), ['--version'])).stdout.trim()).toBe(process.version);
    const launcher = await readFile(path.join(kit, 'bin/airlock'), 'utf8');
    expect(launcher).toContain(`/runtime/node" ${NODE_FLAGS.join(' ')} "`);
    const unit = await readFile(path.join(kit, 'systemd/airlock.service'), 'utf8');
    expect(unit).toMatch(new RegExp(`^ExecStart=/opt/airlock/runtime/node ${NODE_FLAGS.join(' ')} /opt/airlock/dist/cli/main\\.js serve --config /etc/airlock/mirror\\.yml$`, 'm'));
  });

  it('comes off the bundle, installs into an empty prefix on a site with no network and no node, imports that bundle and serves it to skopeo', async () => {
    const links = await exec('nsenter', ['-t', String(holder.pid), '-n', 'ip', '-o', 'link']);
    expect(links.stdout.trim().split('\n').map((l) => l.split(':')[1]!.trim())).toEqual(['lo']);
    expect((await onSite('command -v node || echo none')).stdout.trim()).toBe('none');

    const site = path.join(work, 'site');
    const prefix = path.join(site, 'opt/airlock');
    // The walk-through's first step: the kit out of the bundle, checked by the bundle's SHA256SUMS.
    const kitEntry = `airlock-kit/${path.basename(kitFile)}`;
    const inst = await onSite(`mkdir -p '${site}' && cd '${site}' && tar -xf '${bundle}' '${kitEntry}' SHA256SUMS && sha256sum -c --quiet --ignore-missing SHA256SUMS && tar -xzf '${kitEntry}' && ./${releaseKitDir(pkg.version)}/install.sh --prefix '${prefix}' --no-systemd`);
    expect(inst.stderr).toBe('');
    expect(inst.code).toBe(0);
    expect(inst.stdout.trim()).toBe(`airlock ${pkg.version} installed in ${prefix}; run: ${prefix}/bin/airlock serve --config ${prefix}/mirror.yml`);
    expect((await onSite(`'${prefix}/bin/airlock' --version`)).stdout).toBe(`airlock ${pkg.version}\n`);
    // The unit for this prefix, and a SHA256SUMS that checks what was installed.
    expect(await readFile(path.join(prefix, 'systemd/airlock.service'), 'utf8')).toContain(`ExecStart=${prefix}/runtime/node ${NODE_FLAGS.join(' ')} ${prefix}/dist/cli/main.js serve`);
    expect((await onSite(`cd '${prefix}' && sha256sum -c --quiet SHA256SUMS`)).code).toBe(0);

    const cfg = path.join(site, 'mirror.yml');
    await writeFile(cfg, `listen: 127.0.0.1:5000\nstorage:\n  root: ${path.join(site, 'store')}\nlog:\n  level: warn\n`);
    const imp = await onSite(`'${prefix}/bin/airlock' import --config '${cfg}' '${bundle}'`);
    expect(imp.stderr).not.toMatch(/^airlock:/m);
    expect(imp.code).toBe(0);

    const serve = spawn('nsenter', ['-t', String(holder.pid), '-n', '--', 'env', '-i', `PATH=${tools}`, `${prefix}/bin/airlock`, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    serve.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    serve.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    try {
      // Ready when the kit's own Node gets 200 from /healthz inside the namespace.
      const probe = `i=0; until '${prefix}/runtime/node' -e "fetch('http://127.0.0.1:5000/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.2; done`;
      expect((await onSite(probe, 60_000)).code, out).toBe(0);
      const dir = path.join(site, 'pulled');
      const pull = await onSite(`skopeo copy --insecure-policy --preserve-digests --retry-times=0 --src-tls-verify=false docker://127.0.0.1:5000/site/app:1.0 'dir:${dir}'`);
      expect(pull.stderr).toBe('');
      expect(pull.code).toBe(0);
      expect(await sha256File(path.join(dir, 'manifest.json'))).toBe(image.manifestDigest);
      for (const b of image.blobs) expect(await sha256File(path.join(dir, b.digest.slice('sha256:'.length)))).toBe(b.digest);
      // The console ships in the kit: its page and the script it names.
      const page = `'${prefix}/runtime/node' -e "fetch('http://127.0.0.1:5000/ui/').then(r=>r.text()).then(t=>{const s=/src=\\"([^\\"]+)\\"/.exec(t)[1];return fetch(new URL(s,'http://127.0.0.1:5000/ui/'))}).then(r=>process.exit(r.ok?0:1),()=>process.exit(2))"`;
      expect((await onSite(page)).code, out).toBe(0);
    } finally {
      serve.kill('SIGTERM');
      await new Promise((r) => serve.once('exit', r));
    }
  }, 180_000);

  it('upgrades in place: the kit files replaced whole, mirror.yml and the rest of the prefix kept, no temp folders left', async () => {
    const kit = await extracted();
    const prefix = path.join(work, 'upgrade/airlock');
    expect((await onSite(`'${kit}/install.sh' --prefix '${prefix}' --no-systemd`)).code).toBe(0);
    await writeFile(path.join(prefix, 'mirror.yml'), 'listen: 127.0.0.1:5999\n');
    await writeFile(path.join(prefix, 'dist/stale.js'), 'old\n');
    await mkdir(path.join(prefix, 'data'));
    await writeFile(path.join(prefix, 'data/keep'), 'mine\n');
    // Without --no-systemd where systemd is not running (an empty /run): the kit only, and a note.
    const again = await exec('unshare', ['-m', 'sh', '-c', `mount -t tmpfs tmpfs /run && exec env -i PATH='${tools}' '${kit}/install.sh' --prefix '${prefix}'`]);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`systemd is not running here: no unit installed (for this prefix it is ${prefix}/systemd/airlock.service)`);
    expect(await readFile(path.join(prefix, 'mirror.yml'), 'utf8')).toBe('listen: 127.0.0.1:5999\n');
    expect(await readFile(path.join(prefix, 'data/keep'), 'utf8')).toBe('mine\n');
    await expect(stat(path.join(prefix, 'dist/stale.js'))).rejects.toThrow();
    expect((await readdir(prefix)).filter((e) => e.startsWith('.'))).toEqual([]);
    expect((await onSite(`cd '${prefix}' && sha256sum -c --quiet SHA256SUMS && '${prefix}/bin/airlock' --version`)).stdout).toBe(`airlock ${pkg.version}\n`);
  }, 120_000);

  it('installs the systemd unit, the airlock user and /etc/airlock where systemd runs (in a private mount namespace)', async () => {
    const kit = await extracted();
    const etc = path.join(work, 'etc-copy');
    const bin = path.join(work, 'systemd-path');
    await mkdir(bin);
    for (const t of await readdir(tools)) await symlink(path.join(tools, t), path.join(bin, t));
    for (const t of ['/usr/sbin/useradd', '/usr/bin/install']) await symlink(t, path.join(bin, path.basename(t)));
    const calls = path.join(work, 'systemctl.calls');
    await writeFile(path.join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >>'${calls}'\n[ "$1" != is-active ]\n`);
    await chmod(path.join(bin, 'systemctl'), 0o755);
    const prefix = path.join(work, 'sd/airlock');
    // This machine's /etc and /run stay untouched: a copy of /etc and an empty /run are mounted over them.
    const script = [
      'set -e',
      `cp -a /etc/. '${etc}/'`,
      `mkdir -p '${etc}/systemd/system'`,
      `mount --bind '${etc}' /etc`,
      'mount -t tmpfs tmpfs /run',
      'mkdir -p /run/systemd/system',
      `exec env -i PATH='${bin}' '${kit}/install.sh' --prefix '${prefix}'`,
    ].join('\n');
    await mkdir(etc);
    const r = await exec('unshare', ['-m', 'sh', '-c', script]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('systemctl enable --now airlock');
    expect(await readFile(path.join(etc, 'systemd/system/airlock.service'), 'utf8')).toMatch(new RegExp(`^ExecStart=${prefix}/runtime/node .* ${prefix}/dist/cli/main\\.js serve --config /etc/airlock/mirror\\.yml$`, 'm'));
    expect(await readFile(path.join(etc, 'airlock/mirror.yml'), 'utf8')).toMatch(/^ {2}root: \/var\/lib\/airlock$/m);
    const gid = /^airlock:x:(\d+):/m.exec(await readFile(path.join(etc, 'group'), 'utf8'))?.[1];
    expect(gid).toBeDefined();
    expect(await readFile(path.join(etc, 'passwd'), 'utf8')).toMatch(/^airlock:x:\d+:\d+::\/var\/lib\/airlock:\/usr\/sbin\/nologin$/m);
    const env = await stat(path.join(etc, 'airlock/airlock.env'));
    expect([env.mode & 0o777, env.gid]).toEqual([0o640, Number(gid)]);
    expect(await readFile(calls, 'utf8')).toContain('daemon-reload\n');
    // The real /etc was never written.
    expect(await readFile('/etc/passwd', 'utf8')).not.toMatch(/^airlock:/m);
  }, 120_000);

  it('install.sh refuses a read-only prefix, an unknown option, a Node that cannot run here and a damaged kit: one line, non-zero exit', async () => {
    const kit = await extract('x-hostile');
    const ro = path.join(work, 'ro');
    await mkdir(ro);
    const r = await exec('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o ro tmpfs '${ro}' && exec env -i PATH='${tools}' '${kit}/install.sh' --prefix '${ro}/airlock'`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`install.sh: cannot create ${ro}/airlock: Read-only file system\n`);
    const existing = await exec('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o ro tmpfs '${ro}' && exec env -i PATH='${tools}' '${kit}/install.sh' --prefix '${ro}'`]);
    expect([existing.code, existing.stderr]).toEqual([1, `install.sh: cannot write to ${ro}: Read-only file system\n`]);

    const bad = await onSite(`'${kit}/install.sh' --prefix '${work}/never' --no-systemd --fast`);
    expect([bad.code, bad.stderr]).toEqual([2, 'install.sh: unknown argument --fast (usage: install.sh [--prefix DIR] [--no-systemd])\n']);

    // A kit whose Node cannot run here (as on a site with too old a glibc) leaves the installed airlock as it was.
    const prefix = path.join(work, 'hostile/airlock');
    expect((await onSite(`'${kit}/install.sh' --prefix '${prefix}' --no-systemd`)).code).toBe(0);
    await writeFile(path.join(kit, 'runtime/node'), '#!/bin/sh\necho "node: /lib/libc.so.6: version \'GLIBC_2.99\' not found" >&2\nexit 1\n');
    const resum = await exec('sh', ['-c', `cd '${kit}' && sed -i "s#^[0-9a-f]*  runtime/node\\$#$(sha256sum runtime/node)#" SHA256SUMS && sha256sum -c --quiet SHA256SUMS`]);
    expect(resum.code).toBe(0);
    const old = await onSite(`'${kit}/install.sh' --prefix '${prefix}' --no-systemd`);
    expect([old.code, old.stderr]).toEqual([1, `install.sh: this machine cannot run the kit's Node (${/^glibc (.*)$/m.exec(await readFile(path.join(kit, 'VERSION'), 'utf8'))![1]} needed): node: /lib/libc.so.6: version 'GLIBC_2.99' not found\n`]);
    expect((await onSite(`'${prefix}/bin/airlock' --version`)).stdout).toBe(`airlock ${pkg.version}\n`);
    expect((await readdir(prefix)).filter((e) => e.startsWith('.'))).toEqual([]);

    await writeFile(path.join(kit, 'dist/cli/main.js'), '// tampered\n', { flag: 'a' });
    const damaged = await onSite(`'${kit}/install.sh' --prefix '${work}/never' --no-systemd`);
    expect([damaged.code, damaged.stderr]).toEqual([1, 'install.sh: the kit is damaged: dist/cli/main.js: FAILED\n']);
    await expect(stat(path.join(work, 'never'))).rejects.toThrow();
  }, 120_000);
});
