/**
 * airlock as the disconnected site's own registry, with real clients: skopeo pushes over HTTPS
 * (a private CA) with a login and pulls back; logins and permissions answer with the right
 * status and code; pushes into mirrored names are refused while local names take them; a store
 * airlock wrote (pushes and pull-through fills) is served by Debian's docker-registry; gc frees
 * what a deleted image held and nothing else, also while pushes and pulls run.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { runAirlock } from '../helpers/cli.js';
import { startDistribution } from '../helpers/distribution.js';
import { generateImage, generateIndex, type GeneratedImage } from '../helpers/images.js';
import { pullToLayout, skopeoCopy } from '../helpers/skopeo.js';
import { blobFile, exists } from '../helpers/store-files.js';
import { mirrorUpstreams, startTestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
let work: string;
let caDir: string;
let tlsFiles: { cert: string; key: string };
const img: Record<string, GeneratedImage> = {};
const CI = { user: 'ci', password: 'ci-pass-1' };
const VIEWER = { user: 'viewer', password: 'view-pass-2' };


/** A private CA and a server certificate for 127.0.0.1 signed by it, as the README shows. */
async function makeCa(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const o = (args: string[]) => run('openssl', args, { cwd: dir });
  await o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=airlock test CA', '-keyout', 'ca.key', '-out', 'ca.crt']);
  await o(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'tls.key', '-out', 'tls.csr']);
  await writeFile(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await o(['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'tls.crt']);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-push-'));
  const pki = path.join(work, 'pki');
  await makeCa(pki);
  // skopeo's cert dir holds only the CA (a *.key there would be taken for a client key).
  caDir = path.join(work, 'certs.d');
  await mkdir(caDir);
  await writeFile(path.join(caDir, 'ca.crt'), await readFile(path.join(pki, 'ca.crt')));
  tlsFiles = { cert: path.join(pki, 'tls.crt'), key: path.join(pki, 'tls.key') };
  await writeFile(path.join(work, 'htpasswd'), `${CI.user}:${bcrypt.hashSync(CI.password, 6)}\n${VIEWER.user}:${bcrypt.hashSync(VIEWER.password, 6)}\n`);
  img.single = await generateImage(path.join(work, 'i1'), { layers: 3, layerSize: 400_000, format: 'oci' });
  img.multi = await generateIndex(path.join(work, 'i2'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 2, layerSize: 200_000, format: 'docker' });
  img.other = await generateImage(path.join(work, 'i3'), { layers: 2, layerSize: 300_000, format: 'docker' });
  img.third = await generateImage(path.join(work, 'i4'), { layers: 2, layerSize: 250_000, format: 'oci' });
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function securedConfig(root: string, extra = ''): string {
  return [
    `storage:\n  root: ${root}`,
    'log:\n  level: info',
    `tls:\n  cert: ${tlsFiles.cert}\n  key: ${tlsFiles.key}`,
    `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}\n  maxFailures: 5\n  rules:`,
    `    - users: [${CI.user}]\n      repositories: ["team/**"]\n      actions: [pull, push, delete]`,
    `    - users: ["*"]\n      repositories: ["**"]\n      actions: [pull]`,
    extra,
  ].join('\n');
}

describe('over HTTPS with logins', () => {
  let reg: RunningAirlock;
  let root: string;
  let https: string;
  let tls: Agent;

  beforeAll(async () => {
    root = path.join(work, 'secured');
    reg = await startAirlock(securedConfig(root));
    https = `127.0.0.1:${reg.port}`;
    tls = new Agent({ connect: { ca: await readFile(path.join(caDir, 'ca.crt')) } });
  });
  afterAll(async () => {
    await tls?.close();
    await reg?.stop();
  });

  const basic = (u: { user: string; password: string }) => `Basic ${Buffer.from(`${u.user}:${u.password}`).toString('base64')}`;
  async function call(method: string, p: string, headers: Record<string, string> = {}) {
    const r = await request(`https://${https}${p}`, { method: method as 'GET', headers, dispatcher: tls });
    const text = await r.body.text();
    return { status: r.statusCode, headers: r.headers, code: text ? (JSON.parse(text) as { errors?: Array<{ code: string }> }).errors?.[0]?.code : undefined };
  }

  it('skopeo pushes a single and a multi-arch image with a login and pulls them back, digests equal', async () => {
    const opts = { tlsVerify: true, certDir: caDir };
    await skopeoCopy(img.single!.source, `docker://${https}/team/app:1.0`, { ...opts, destCreds: `${CI.user}:${CI.password}` });
    await skopeoCopy(img.multi!.source, `docker://${https}/team/multi:1.0`, { ...opts, all: true, destCreds: `${CI.user}:${CI.password}` });
    const one = await pullToLayout(`docker://${https}/team/app:1.0`, path.join(work, 'back1'), { ...opts, srcCreds: `${VIEWER.user}:${VIEWER.password}` });
    expect(one.manifestDigest).toBe(img.single!.manifestDigest);
    expect(one.blobs).toEqual(expect.arrayContaining(img.single!.blobs.map((b) => b.digest)));
    const multi = await pullToLayout(`docker://${https}/team/multi:1.0`, path.join(work, 'back2'), { ...opts, all: true, srcCreds: `${VIEWER.user}:${VIEWER.password}` });
    expect(multi.manifestDigest).toBe(img.multi!.manifestDigest);
    expect(multi.blobs).toEqual(expect.arrayContaining([...img.multi!.children.map((c) => c.manifestDigest), ...img.multi!.blobs.map((b) => b.digest)]));
    // The bytes are in the standard layout; no upload session is left behind.
    for (const b of img.single!.blobs) expect((await stat(blobFile(root, b.digest))).size).toBe(b.size);
    expect(await readdir(path.join(root, 'docker/registry/v2/repositories/team/app/_uploads')).catch(() => [])).toEqual([]);
    // Plain HTTP on the TLS port is refused, not answered.
    await expect(request(`http://${https}/v2/`)).rejects.toThrow();
  });

  it('answers missing and wrong logins, writes without permission and disabled deletes with the right status and code', async () => {
    const none = await call('GET', '/v2/');
    expect(none.status).toBe(401);
    expect(none.code).toBe('UNAUTHORIZED');
    expect(none.headers['www-authenticate']).toBe('Basic realm="airlock"');
    expect((await call('GET', '/v2/team/app/manifests/1.0')).status).toBe(401);
    expect((await call('GET', '/v2/', { authorization: basic(VIEWER) })).status).toBe(200);
    const wrong = await call('GET', '/v2/', { authorization: basic({ user: CI.user, password: 'not-it' }) });
    expect(wrong.status).toBe(401);
    expect(wrong.code).toBe('UNAUTHORIZED');
    const write = await call('POST', '/v2/team/app/blobs/uploads/', { authorization: basic(VIEWER) });
    expect(write.status).toBe(403);
    expect(write.code).toBe('DENIED');
    const outside = await call('POST', '/v2/other/app/blobs/uploads/', { authorization: basic(CI) });
    expect(outside.status).toBe(403);
    const del = await call('DELETE', `/v2/team/app/manifests/${img.single!.manifestDigest}`, { authorization: basic(CI) });
    expect(del.status).toBe(405);
    expect(del.code).toBe('UNSUPPORTED');
    const delViewer = await call('DELETE', `/v2/team/app/manifests/${img.single!.manifestDigest}`, { authorization: basic(VIEWER) });
    expect(delViewer.status).toBe(403);
    // The failed login is logged with the user, never the password.
    const text = JSON.stringify(reg.logs);
    expect(reg.logs.some((l) => l.msg === 'login failed' && l.user === CI.user)).toBe(true);
    expect(text).not.toContain('not-it');
    expect(text).not.toContain(CI.password);
  });

  it('rate-limits failed logins per user and client address, without locking out other users', async () => {
    const bad = { authorization: basic({ user: 'mallory', password: 'guess' }) };
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await call('GET', '/v2/', bad)).status);
    // auth.maxFailures is 5: five are checked, the rest refused unchecked.
    expect(statuses.filter((s) => s === 401).length).toBe(5);
    const limited = await call('GET', '/v2/', bad);
    expect(limited.status).toBe(429);
    expect(limited.code).toBe('TOOMANYREQUESTS');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another user behind the same address still logs in.
    expect((await call('GET', '/v2/', { authorization: basic(VIEWER) })).status).toBe(200);
  });
});

describe('certificate reload', () => {
  it('serves a replaced certificate after a reload, and keeps the old one when the new files are broken', async () => {
    const dir = path.join(work, 'reload');
    await makeCa(dir);
    const cert = path.join(dir, 'live.crt');
    const key = path.join(dir, 'live.key');
    await writeFile(cert, await readFile(tlsFiles.cert));
    await writeFile(key, await readFile(tlsFiles.key));
    const reg = await startAirlock(`storage:\n  root: ${path.join(work, 'reload-store')}\nlog:\n  level: warn\ntls:\n  cert: ${cert}\n  key: ${key}\n`);
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: reg.port, rejectUnauthorized: false }, () => {
          resolve(s.getPeerCertificate().fingerprint256);
          s.end();
        });
        s.on('error', reject);
      });
    try {
      const before = await served();
      await writeFile(cert, await readFile(path.join(dir, 'tls.crt')));
      await writeFile(key, await readFile(path.join(dir, 'tls.key')));
      await reg.reload();
      const after = await served();
      expect(after).not.toBe(before);
      await writeFile(key, 'not a key');
      await expect(reg.reload()).rejects.toThrow(/tls/);
      expect(await served()).toBe(after);
    } finally {
      await reg.stop();
    }
  });
});

describe('beside upstreams', () => {
  it('refuses pushes into mirrored names, takes them for push.repositories, and docker-registry serves the store it wrote', async () => {
    const up = await startTestUpstream();
    const root = path.join(work, 'mixed');
    try {
      await up.push(img.other!, 'library/busybox', '1');
      const reg = await startAirlock(`storage:\n  root: ${root}\nlog:\n  level: warn\n${mirrorUpstreams(up)}\npush:\n  repositories: ["local/**"]\n`);
      try {
        const r = await request(`${reg.url}/v2/library/busybox/blobs/uploads/`, { method: 'POST' });
        const body = (await r.body.json()) as { errors: Array<{ code: string; message: string }> };
        expect(r.statusCode).toBe(403);
        expect(body.errors[0]!.code).toBe('DENIED');
        expect(body.errors[0]!.message).toMatch(/push\.repositories/);
        await skopeoCopy(img.single!.source, `docker://${reg.host}/local/app:1`);
        // A pull-through fill beside it.
        const filled = await pullToLayout(`docker://${reg.host}/library/busybox:1`, path.join(work, 'mixed-pull'));
        expect(filled.manifestDigest).toBe(img.other!.manifestDigest);
        // The local name is never looked up upstream.
        const seen = up.proxy.records.length;
        expect((await request(`${reg.url}/v2/local/nothing/manifests/1`)).statusCode).toBe(404);
        expect(up.proxy.records.length).toBe(seen);
      } finally {
        await reg.stop();
      }
      const dist = await startDistribution({ root });
      try {
        const a = await pullToLayout(`docker://${dist.host}/local/app:1`, path.join(work, 'dist-a'));
        expect(a.manifestDigest).toBe(img.single!.manifestDigest);
        const b = await pullToLayout(`docker://${dist.host}/library/busybox:1`, path.join(work, 'dist-b'));
        expect(b.manifestDigest).toBe(img.other!.manifestDigest);
        expect(b.blobs).toEqual(expect.arrayContaining(img.other!.blobs.map((x) => x.digest)));
      } finally {
        await dist.stop();
      }
    } finally {
      await up.stop();
    }
  });
});

describe('garbage collection', () => {
  let root: string;
  let cfg: string;
  let reg: RunningAirlock;

  beforeAll(async () => {
    root = path.join(work, 'gc');
    cfg = path.join(work, 'gc.yml');
    const yaml = `storage:\n  root: ${root}\n  delete:\n    enabled: true\nlog:\n  level: warn\n`;
    await writeFile(cfg, yaml);
    reg = await startAirlock(yaml);
    await skopeoCopy(img.single!.source, `docker://${reg.host}/apps/a:1`);
    await skopeoCopy(img.other!.source, `docker://${reg.host}/apps/b:1`);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  /** Makes every blob look old, so only the mark (not the grace period) decides. */
  async function ageBlobs(): Promise<void> {
    const base = path.join(root, 'docker/registry/v2/blobs/sha256');
    const old = new Date(Date.now() - 3 * 3_600_000);
    for (const p of await readdir(base)) for (const h of await readdir(path.join(base, p))) await utimes(path.join(base, p, h, 'data'), old, old);
  }

  it('deleting a tag then gc --delete-untagged frees exactly that image; a dry run first deletes nothing', async () => {
    const del = await request(`${reg.url}/v2/apps/a/manifests/1`, { method: 'DELETE' });
    await del.body.dump();
    expect(del.statusCode).toBe(202);
    await ageBlobs();
    const unique = img.single!.blobs.reduce((s, b) => s + b.size, 0) + img.single!.manifestBytes.length;
    const dry = await runAirlock(['gc', '--config', cfg, '--dry-run', '--delete-untagged', '--grace', '0s']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would delete manifest apps/a@${img.single!.manifestDigest}`);
    for (const b of img.single!.blobs) expect(await exists(blobFile(root, b.digest))).toBe(true);

    const r = await runAirlock(['gc', '--config', cfg, '--delete-untagged', '--grace', '0s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`deleted 1 manifests and ${img.single!.blobs.length + 1} blobs`));
    const freed = /\(([^)]+) freed\)/.exec(r.stdout)?.[1];
    expect(freed).toBeTruthy();
    for (const b of img.single!.blobs) expect(await exists(blobFile(root, b.digest))).toBe(false);
    expect(await exists(blobFile(root, img.single!.manifestDigest))).toBe(false);
    // The other image is whole and still pulls.
    const b = await pullToLayout(`docker://${reg.host}/apps/b:1`, path.join(work, 'gc-b'));
    expect(b.manifestDigest).toBe(img.other!.manifestDigest);
    expect((await request(`${reg.url}/v2/apps/a/blobs/${img.single!.blobs[0]!.digest}`, { method: 'HEAD' })).statusCode).toBe(404);
    const v = await runAirlock(['verify', '--config', cfg], 60_000);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(unique).toBeGreaterThan(0);
  });

  it('gc racing pushes and pulls loses nothing', async () => {
    // Garbage to sweep: an image pushed and deleted, its blobs aged past the grace period.
    await skopeoCopy(img.single!.source, `docker://${reg.host}/apps/gone:1`);
    const del = await request(`${reg.url}/v2/apps/gone/manifests/${img.single!.manifestDigest}`, { method: 'DELETE' });
    await del.body.dump();
    await ageBlobs();
    const work2 = path.join(work, 'race');
    await mkdir(work2);
    const clients = (async () => {
      for (let i = 0; i < 3; i++) {
        await skopeoCopy(img.third!.source, `docker://${reg.host}/apps/new${i}:1`);
        const p = await pullToLayout(`docker://${reg.host}/apps/b:1`, path.join(work2, `b${i}`));
        expect(p.manifestDigest).toBe(img.other!.manifestDigest);
      }
    })();
    const sweeps = (async () => {
      const outs: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await runAirlock(['gc', '--config', cfg], 60_000);
        expect(r.code, r.stderr).toBe(0);
        outs.push(r.stdout);
      }
      return outs;
    })();
    const [, outs] = await Promise.all([clients, sweeps]);
    expect(outs.join('\n')).toMatch(/deleted 0 manifests and [1-9]\d* blobs/);
    for (const b of img.single!.blobs) expect(await exists(blobFile(root, b.digest))).toBe(false);
    for (let i = 0; i < 3; i++) {
      const p = await pullToLayout(`docker://${reg.host}/apps/new${i}:1`, path.join(work2, `n${i}`));
      expect(p.manifestDigest).toBe(img.third!.manifestDigest);
    }
    const v = await runAirlock(['verify', '--config', cfg], 60_000);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
