/**
 * The audit log (audit.file) with real parts: Distribution with token auth upstream, airlock
 * in-process and as a child process, skopeo as the client, the airlock command for freeze,
 * import, gc and `airlock audit`. Each event type has its line, written before the response
 * ends; no line carries a password or token; a SIGHUP after a logrotate-style rename writes on
 * into a new file.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { AIRLOCK_BIN, NODE_FLAGS, runAirlock, spawnServe, waitHealthy } from '../helpers/cli.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { pullToLayout, skopeoCopy } from '../helpers/skopeo.js';
import { READER, mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const OCI = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const DEV = basic('dev', 'dev-pw');
const RO = basic('ro', 'ro-pw');

let work: string;
let up: TestUpstream;
let a: RunningAirlock;
const img = {} as Record<'app' | 'app2' | 'nginx' | 'tool', GeneratedImage>;
const auditFile = () => path.join(work, 'logs', 'audit.log');

type Line = Record<string, unknown> & { audit: string; time: string };
async function lines(file = auditFile()): Promise<Line[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
}

function mirrorYml(extra: string[] = []): string {
  return [
    'listen: 127.0.0.1:0',
    `storage:\n  root: ${path.join(work, 'store')}\n  delete:\n    enabled: true`,
    'log:\n  level: warn',
    `audit:\n  file: ${auditFile()}`,
    'cache:\n  tagTTL: 0s',
    `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}\n  rules:\n    - users: ["dev"]\n      actions: [pull, push, delete]\n    - users: ["ro"]\n      repositories: ["library/**"]\n      actions: [pull]`,
    'push:\n  repositories: ["acme/**"]',
    'upstreams:',
    `  docker.io:\n    url: ${up.proxy.url}\n    username: ${READER.user}\n    password: ${READER.password}\n    deny: ["library/nginx"]`,
    ...extra,
    '',
  ].join('\n');
}

async function get(p: string, authorization: string): Promise<{ status: number; digest?: string; body: string }> {
  const r = await request(`${a.url}${p}`, { headers: { accept: OCI, authorization } });
  return { status: r.statusCode, digest: r.headers['docker-content-digest'] as string | undefined, body: await r.body.text() };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-audit-'));
  await writeFile(path.join(work, 'htpasswd'), `dev:${bcrypt.hashSync('dev-pw', 5)}\nro:${bcrypt.hashSync('ro-pw', 5)}\n`);
  up = await startTestUpstream();
  img.app = await generateImage(path.join(work, 'g-app'), { layers: 1, layerSize: 50_000, format: 'oci' });
  img.app2 = await generateImage(path.join(work, 'g-app2'), { layers: 1, layerSize: 50_000, format: 'oci' });
  img.nginx = await generateImage(path.join(work, 'g-nginx'), { layers: 1, layerSize: 50_000, format: 'oci' });
  img.tool = await generateImage(path.join(work, 'g-tool'), { layers: 1, layerSize: 50_000, format: 'docker' });
  await up.push(img.app, 'library/app', 'v1');
  await up.push(img.nginx, 'library/nginx', 'latest');
  await writeFile(path.join(work, 'mirror.yml'), mirrorYml());
  a = await startAirlock(mirrorYml());
}, 120_000);

afterAll(async () => {
  await a?.stop();
  await up?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('audit log', () => {
  it('records a pull with the name as asked and as stored, the digest and the cache outcome, before the response ends', async () => {
    const r = await get('/v2/app/manifests/v1?ns=docker.io', RO);
    expect(r.status).toBe(200);
    // Read at once: the line was written before the last byte of the response.
    const pull = (await lines()).filter((l) => l.audit === 'pull');
    expect(pull, JSON.stringify(pull)).toHaveLength(1);
    expect(pull[0]).toMatchObject({ user: 'ro', address: '127.0.0.1', name: 'app', ns: 'docker.io', stored: 'library/app', reference: 'v1', digest: img.app.manifestDigest, cache: 'miss', status: 200 });
    // A real client's pull is one line per manifest it asked for.
    const out = await pullToLayout(`docker://${a.host}/library/app:v1`, path.join(work, 'pulled-app'), { creds: 'ro:ro-pw' });
    expect(out.manifestDigest).toBe(img.app.manifestDigest);
    const again = (await lines()).filter((l) => l.audit === 'pull');
    expect(again.length).toBeGreaterThanOrEqual(2);
    expect(again.at(-1)).toMatchObject({ user: 'ro', stored: 'library/app', digest: img.app.manifestDigest, status: 200 });
    expect(['hit', 'revalidated']).toContain(again.at(-1)?.cache);
  });

  it('records refused pulls: a denied image in another spelling, and a repository the user may not read', async () => {
    const denied = await get('/v2/nginx/manifests/latest', DEV);
    expect(denied.status).toBe(403);
    const secret = await get('/v2/acme/tool/manifests/1', RO);
    expect(secret.status).toBe(403);
    const refused = (await lines()).filter((l) => l.audit === 'pull' && l.status === 403);
    expect(refused).toEqual([
      expect.objectContaining({ user: 'dev', name: 'nginx', stored: 'library/nginx', reference: 'latest', reason: expect.stringContaining('library/nginx') }),
      expect.objectContaining({ user: 'ro', name: 'acme/tool', stored: 'acme/tool', reason: expect.stringContaining('may not pull') }),
    ]);
    // The denied image was never asked of the upstream.
    expect(up.proxy.records.filter((x) => x.path.includes('nginx'))).toEqual([]);
  });

  it('records a push, a tag delete and a manifest delete', async () => {
    await skopeoCopy(img.tool.source, `docker://${a.host}/acme/tool:1`, { destCreds: 'dev:dev-pw' });
    const push = (await lines()).filter((l) => l.audit === 'push');
    expect(push).toEqual([expect.objectContaining({ user: 'dev', name: 'acme/tool', stored: 'acme/tool', reference: '1', digest: img.tool.manifestDigest })]);
    await skopeoCopy(img.tool.source, `docker://${a.host}/acme/tool:2`, { destCreds: 'dev:dev-pw' });
    const del = async (ref: string) => {
      const r = await request(`${a.url}/v2/acme/tool/manifests/${ref}`, { method: 'DELETE', headers: { authorization: DEV } });
      await r.body.dump();
      return r.statusCode;
    };
    expect(await del('2')).toBe(202);
    expect(await del(img.tool.manifestDigest)).toBe(202);
    const dels = (await lines()).filter((l) => l.audit === 'delete');
    expect(dels).toEqual([
      expect.objectContaining({ user: 'dev', stored: 'acme/tool', kind: 'tag', reference: '2' }),
      expect.objectContaining({ user: 'dev', stored: 'acme/tool', kind: 'manifest', reference: img.tool.manifestDigest }),
    ]);
  });

  it('records a tag the upstream moved, seen on revalidation', async () => {
    await up.push(img.app2, 'library/app', 'v1');
    const r = await get('/v2/library/app/manifests/v1', RO);
    expect(r.digest).toBe(img.app2.manifestDigest);
    const moved = (await lines()).filter((l) => l.audit === 'tag-moved');
    expect(moved).toEqual([expect.objectContaining({ stored: 'library/app', tag: 'v1', upstream: 'docker.io', from: img.app.manifestDigest, to: img.app2.manifestDigest })]);
  });

  it('records failed logins with the user and address, never the password', async () => {
    const r = await get('/v2/library/app/manifests/v1', basic('ro', 'wrong-password-9c1'));
    expect(r.status).toBe(401);
    const failed = (await lines()).filter((l) => l.audit === 'login-failed');
    expect(failed).toEqual([expect.objectContaining({ user: 'ro', address: '127.0.0.1', reason: 'wrong user name or password' })]);
  });

  it('records freeze, import and gc removals from the command line, and reads them back with airlock audit', async () => {
    const cfg = path.join(work, 'mirror.yml');
    const bundle = path.join(work, 'app.tar');
    // The tag moved above: pull the new image whole, so the store holds all of it.
    await pullToLayout(`docker://${a.host}/library/app:v1`, path.join(work, 'pulled-app2'), { creds: 'ro:ro-pw' });
    const frozen = await runAirlock(['freeze', '--config', cfg, '--out', bundle, 'library/app:v1']);
    expect(frozen.code, frozen.stderr).toBe(0);
    const sums = (await lines()).filter((l) => l.audit === 'freeze');
    expect(sums).toEqual([expect.objectContaining({ bundle, images: ['library/app:v1'], sums: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) })]);

    const imported = await runAirlock(['import', '--config', cfg, bundle]);
    expect(imported.code, imported.stderr).toBe(0);
    const imp = (await lines()).filter((l) => l.audit === 'import');
    expect(imp).toEqual([expect.objectContaining({ bundle, sums: sums[0]?.sums, images: ['library/app:v1'], forced: [] })]);

    // acme/tool's manifest was deleted above: gc removes its blobs.
    const gc = await runAirlock(['gc', '--config', cfg, '--grace', '0s']);
    expect(gc.code, gc.stderr).toBe(0);
    const removed = (await lines()).filter((l) => l.audit === 'remove' && l.by === 'gc');
    expect(removed.map((l) => l.digest)).toEqual(expect.arrayContaining(img.tool.blobs.map((b) => b.digest)));

    const table = await runAirlock(['audit', '--config', cfg, '--since', '1h', '--image', 'app', '--user', 'ro']);
    expect(table.code, table.stderr).toBe(0);
    const rows = table.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^TIME\s+EVENT\s+USER\s+ADDRESS\s+IMAGE\s+DIGEST\s+DETAIL$/);
    // ro's pulls of app (in both spellings) and the failed login's line is not an image's.
    expect(rows.slice(2).every((row) => /\bpull\s+ro\s+127\.0\.0\.1\s+library\/app:v1\b/.test(row))).toBe(true);
    expect(rows.length - 2).toBe((await lines()).filter((l) => l.audit === 'pull' && l.user === 'ro' && l.stored === 'library/app').length);

    const json = await runAirlock(['audit', '--config', cfg, '--json', '--image', 'acme/tool']);
    expect(json.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Line).audit)).toEqual(['pull', 'push', 'push', 'delete', 'delete']);
    expect((await runAirlock(['audit', '--config', cfg, '--since', 'yesterday-ish'])).code).toBe(2);
    expect((await runAirlock(['audit', '--config', cfg, '--file', path.join(work, 'nope.log')])).stderr).toMatch(/^airlock: cannot read the audit log .*nope\.log: no such file\n$/);
  });

  it('never writes a password, a token or an Authorization header', async () => {
    const text = await readFile(auditFile(), 'utf8');
    for (const secret of ['dev-pw', 'ro-pw', 'wrong-password-9c1', READER.password, 'Bearer', 'Basic ', 'eyJ']) expect(text).not.toContain(secret);
  });

  it('escapes control characters a client put in a user name when showing the table', async () => {
    const r = await get('/v2/library/app/manifests/v1', basic('evil\u001b[2Jname', 'x'));
    expect(r.status).toBe(401);
    const table = await runAirlock(['audit', '--config', path.join(work, 'mirror.yml'), '--user', 'evil\u001b[2Jname']);
    expect(table.stdout).toContain('evil\\x1b[2Jname');
    expect(table.stdout).not.toContain('\u001b');
  });
});

describe('audit log of a serving process', () => {
  it('reopens its file on SIGHUP after a logrotate-style rename, and records reloads applied and refused', async () => {
    const dir = await mkdtemp(path.join(work, 'serve-'));
    const file = path.join(dir, 'audit.log');
    const port = await freePort();
    const cfg = path.join(dir, 'mirror.yml');
    const yml = [`listen: 127.0.0.1:${port}`, `storage:\n  root: ${path.join(dir, 'store')}`, 'log:\n  level: warn', `audit:\n  file: ${file}`, mirrorUpstreams(up), ''].join('\n');
    await writeFile(cfg, yml);
    const s = spawnServe(cfg);
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitHealthy(url, { out: s.out });
      const pull = async () => {
        const r = await request(`${url}/v2/library/app/manifests/v1`, { headers: { accept: OCI } });
        await r.body.dump();
        expect(r.statusCode).toBe(200);
      };
      await pull();
      await rename(file, `${file}.1`);
      s.child.kill('SIGHUP');
      await until(async () => (await lines(file)).some((l) => l.audit === 'reload'));
      await pull();
      expect((await lines(`${file}.1`)).map((l) => l.audit)).toEqual(['pull']);
      expect((await lines(file)).map((l) => l.audit)).toEqual(['reload', 'pull']);
      expect((await lines(file))[0]).toMatchObject({ outcome: 'applied' });

      // A broken configuration is refused (and recorded); the file is reopened all the same.
      await writeFile(cfg, `${yml}bogus: [\n`);
      await rename(file, `${file}.2`);
      s.child.kill('SIGHUP');
      await until(async () => (await lines(file)).some((l) => l.audit === 'reload'));
      expect((await lines(file))[0]).toMatchObject({ audit: 'reload', outcome: 'refused', error: expect.stringContaining('invalid YAML') });
    } finally {
      s.child.kill('SIGTERM');
      await s.exit;
    }
  });

  it('writes audit lines to stdout with audit.file "-", beside the log lines', async () => {
    const dir = await mkdtemp(path.join(work, 'stdout-'));
    const port = await freePort();
    const cfg = path.join(dir, 'mirror.yml');
    await writeFile(cfg, [`listen: 127.0.0.1:${port}`, `storage:\n  root: ${path.join(dir, 'store')}`, 'log:\n  level: info', 'audit:\n  file: "-"', mirrorUpstreams(up), ''].join('\n'));
    const child = spawn(process.execPath, [...NODE_FLAGS, AIRLOCK_BIN, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exit = new Promise((r) => child.once('exit', r));
    try {
      await waitHealthy(`http://127.0.0.1:${port}`, { out: () => out });
      const r = await request(`http://127.0.0.1:${port}/v2/library/app/manifests/v1`, { headers: { accept: OCI } });
      await r.body.dump();
      await until(async () => out.includes('"audit":"pull"'));
      const parsed = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(parsed.filter((l) => l.audit === 'pull')).toEqual([expect.objectContaining({ stored: 'library/app', digest: img.app2.manifestDigest })]);
      expect(parsed.some((l) => l.msg === 'request')).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await exit;
    }
  });
});

describe('audit log of eviction', () => {
  it('records each image evicted to stay under storage.maxSize', async () => {
    const dir = await mkdtemp(path.join(work, 'evict-'));
    const file = path.join(dir, 'audit.log');
    await up.push(img.nginx, 'library/other', 'v1');
    const reg = await startAirlock(`storage:\n  root: ${path.join(dir, 'store')}\n  maxSize: 80KB\n  evictMinAge: 0s\nlog:\n  level: warn\naudit:\n  file: ${file}\n${mirrorUpstreams(up)}\n`);
    try {
      await pullToLayout(`docker://${reg.host}/library/app:v1`, path.join(dir, 'p1'));
      await pullToLayout(`docker://${reg.host}/library/other:v1`, path.join(dir, 'p2'));
      await until(async () => (await lines(file)).some((l) => l.audit === 'remove'));
      expect((await lines(file)).filter((l) => l.audit === 'remove')).toEqual([
        expect.objectContaining({ by: 'evict', kind: 'image', stored: 'library/app', digest: img.app2.manifestDigest, bytes: expect.any(Number) }),
      ]);
    } finally {
      await reg.stop();
    }
  });
});

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
