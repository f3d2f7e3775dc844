/**
 * Every decision on the resolved repository name (README "Security model"). A real upstream
 * (Distribution with token auth, serving docker.io and ghcr.io) holds images under the same names
 * that users push to airlock, and under names that only a spelling trick would reach; readers try
 * every spelling (`ns`, a host in the path, a short name) to overwrite, read, delete, mount and
 * list what the rules deny them. Asserted: the digests served, the links on disk, and what the
 * upstream saw.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { rawRequest } from '../helpers/raw-http.js';
import { pullToLayout, skopeoCopy } from '../helpers/skopeo.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const DEV = { user: 'dev', password: 'dev-pass-1' };
const READER = { user: 'reader', password: 'reader-pass-2' };
const ADMIN = { user: 'admin', password: 'admin-pass-3' };
const basic = (u: { user: string; password: string }) => `Basic ${Buffer.from(`${u.user}:${u.password}`).toString('base64')}`;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json';

let work: string;
let up: TestUpstream;
let reg: RunningAirlock;
let root: string;
const img: Record<string, GeneratedImage> = {};

function config(storeRoot: string, pushRepositories: string[], anonymous = 'read'): string {
  return [
    `storage:\n  root: ${storeRoot}\n  delete:\n    enabled: true`,
    'log:\n  level: info',
    mirrorUpstreams(up),
    `push:\n  repositories: ${JSON.stringify(pushRepositories)}`,
    `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}\n  anonymous: ${anonymous}\n  rules:`,
    `    - users: [${ADMIN.user}]\n      repositories: ["**"]\n      actions: [pull, push, delete]`,
    `    - users: [${DEV.user}]\n      repositories: ["acme/**"]\n      actions: [pull, push, delete]`,
    `    - users: [${DEV.user}]\n      repositories: ["secret"]\n      actions: [pull]`,
    `    - users: [${READER.user}]\n      repositories: ["acme/**", "ghcr.io/x/**"]\n      actions: [pull]`,
  ].join('\n');
}

async function call(method: string, p: string, headers: Record<string, string> = {}) {
  const r = await request(`${reg.url}${p}`, { method: method as 'GET', headers: { accept: ACCEPT, ...headers } });
  const body = Buffer.from(await r.body.arrayBuffer());
  let code: string | undefined;
  try {
    code = (JSON.parse(body.toString()) as { errors?: Array<{ code: string }> }).errors?.[0]?.code;
  } catch {
    code = undefined;
  }
  return { status: r.statusCode, headers: r.headers, body, code, digest: r.headers['docker-content-digest'] as string | undefined };
}

/** Requests the upstream saw whose path names `repo` (as the upstream knows it). */
function upstreamSaw(repo: string): string[] {
  return up.proxy.records.filter((r) => r.path.startsWith(`/v2/${repo}/`)).map((r) => `${r.method} ${r.path}`);
}

async function tagLink(storeName: string, tag: string): Promise<string> {
  return readFile(path.join(root, 'docker/registry/v2/repositories', storeName, '_manifests/tags', tag, 'current/link'), 'utf8');
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-trust-names-'));
  await writeFile(
    path.join(work, 'htpasswd'),
    [DEV, READER, ADMIN].map((u) => `${u.user}:${bcrypt.hashSync(u.password, 5)}`).join('\n') + '\n',
  );
  up = await startTestUpstream();
  img.pushed = await generateImage(path.join(work, 'pushed'), { layers: 1, layerSize: 50_000, format: 'oci' });
  img.upstreamAcme = await generateImage(path.join(work, 'up-acme'), { layers: 1, layerSize: 50_000, format: 'oci' });
  img.ghcrXY = await generateImage(path.join(work, 'ghcr-xy'), { layers: 1, layerSize: 50_000, format: 'docker' });
  img.literal = await generateImage(path.join(work, 'literal'), { layers: 1, layerSize: 50_000, format: 'docker' });
  img.secret = await generateImage(path.join(work, 'secret'), { layers: 1, layerSize: 60_000, format: 'oci' });
  img.librarySecret = await generateImage(path.join(work, 'lib-secret'), { layers: 1, layerSize: 70_000, format: 'oci' });
  // What the upstream holds: its own acme/app (docker.io), ghcr.io's x/y and acme/secret, and a
  // docker.io repository literally named ghcr.io/x/y.
  await up.push(img.upstreamAcme, 'acme/app', 'v1');
  await up.push(img.ghcrXY, 'x/y', 'v1');
  await up.push(img.literal, 'ghcr.io/x/y', 'v1');
  await up.push(img.secret, 'acme/secret', 'v1');
  root = path.join(work, 'store');
  reg = await startAirlock(config(root, ['acme/**', 'library/secret']));
  // dev pushes acme/app:v1; the admin pushes a private library/secret.
  await skopeoCopy(img.pushed.source, `docker://${reg.host}/acme/app:v1`, { destCreds: `${DEV.user}:${DEV.password}` });
  await skopeoCopy(img.librarySecret.source, `docker://${reg.host}/library/secret:v1`, { destCreds: `${ADMIN.user}:${ADMIN.password}` });
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('one resolved name for every decision', () => {
  it('a reader cannot overwrite a pushed tag with the upstream image of the same name, in any spelling', async () => {
    up.proxy.reset();
    for (const p of ['/v2/acme/app/manifests/v1?ns=docker.io', '/v2/docker.io/acme/app/manifests/v1', '/v2/index.docker.io/acme/app/manifests/v1?ns=docker.io']) {
      for (const who of [{}, { authorization: basic(READER) }] as Array<Record<string, string>>) {
        const r = await call('GET', p, who);
        expect(r.status, `${p} ${JSON.stringify(who)}`).toBe(200);
        expect(r.digest).toBe(img.pushed!.manifestDigest);
      }
    }
    expect(upstreamSaw('acme/app')).toEqual([]);
    expect(await tagLink('acme/app', 'v1')).toBe(img.pushed!.manifestDigest);
    // dev's next pull gets dev's image.
    const back = await pullToLayout(`docker://${reg.host}/acme/app:v1`, path.join(work, 'dev-back'), { srcCreds: `${DEV.user}:${DEV.password}` });
    expect(back.manifestDigest).toBe(img.pushed!.manifestDigest);
  });

  it('a pushed name stays local when push.repositories no longer lists it', async () => {
    const other = await startAirlock(config(root, []));
    try {
      up.proxy.reset();
      const r = await request(`${other.url}/v2/acme/app/manifests/v1?ns=docker.io`, { headers: { accept: ACCEPT } });
      await r.body.dump();
      expect(r.statusCode).toBe(200);
      expect(r.headers['docker-content-digest']).toBe(img.pushed!.manifestDigest);
      expect(upstreamSaw('acme/app')).toEqual([]);
    } finally {
      await other.stop();
    }
  });

  it('rules are judged on the stored name: ?ns=ghcr.io reaches ghcr.io/acme/secret, which dev may not read or delete', async () => {
    up.proxy.reset();
    const auth = { authorization: basic(DEV) };
    const blob = img.secret!.blobs[0]!.digest;
    for (const [method, p] of [
      ['GET', '/v2/acme/secret/manifests/v1?ns=ghcr.io'],
      ['HEAD', '/v2/acme/secret/manifests/v1?ns=ghcr.io'],
      ['GET', '/v2/acme/secret/tags/list?ns=ghcr.io'],
      ['GET', `/v2/acme/secret/blobs/${blob}?ns=ghcr.io`],
      ['GET', `/v2/acme/secret/referrers/${img.secret!.manifestDigest}?ns=ghcr.io`],
      ['DELETE', '/v2/acme/secret/manifests/v1?ns=ghcr.io'],
      ['GET', '/v2/ghcr.io/acme/secret/manifests/v1'],
    ] as const) {
      const r = await call(method, p, auth);
      expect(r.status, `${method} ${p}`).toBe(403);
      if (method !== 'HEAD') expect(r.code).toBe('DENIED');
    }
    // Nothing was fetched with ghcr.io's credentials.
    expect(upstreamSaw('acme/secret')).toEqual([]);
    // The admin reads it through the same spelling: the stored name is ghcr.io/acme/secret.
    const admin = await call('GET', '/v2/acme/secret/manifests/v1?ns=ghcr.io', { authorization: basic(ADMIN) });
    expect(admin.status, admin.body.toString()).toBe(200);
    expect(admin.digest).toBe(img.secret!.manifestDigest);
    expect(await tagLink('ghcr.io/acme/secret', 'v1')).toBe(img.secret!.manifestDigest);
  });

  it('a mount source is resolved before it is judged: from=secret is library/secret, which dev may not pull', async () => {
    const secretLayer = img.librarySecret!.blobs.find((b) => b.mediaType.includes('layer'))!.digest;
    const r = await call('POST', `/v2/acme/app/blobs/uploads/?mount=${secretLayer}&from=secret`, { authorization: basic(DEV) });
    // Not mounted: an ordinary upload session, as the spec asks.
    expect(r.status).toBe(202);
    const got = await call('GET', `/v2/acme/app/blobs/${secretLayer}`, { authorization: basic(DEV) });
    expect(got.status).toBe(404);
    expect(got.code).toBe('BLOB_UNKNOWN');
    // The admin, who may pull library/secret, mounts it by the same spelling.
    const ok = await call('POST', `/v2/acme/app/blobs/uploads/?mount=${secretLayer}&from=secret`, { authorization: basic(ADMIN) });
    expect(ok.status).toBe(201);
  });

  it('a path naming one upstream with an ns naming another is refused, and poisons nothing', async () => {
    up.proxy.reset();
    const r = await call('GET', '/v2/ghcr.io/x/y/manifests/v1?ns=docker.io', { authorization: basic(READER) });
    expect(r.status).toBe(400);
    expect(r.code).toBe('NAME_INVALID');
    expect(r.body.toString()).toContain('ghcr.io');
    expect(upstreamSaw('ghcr.io/x/y')).toEqual([]);
    // ghcr.io's x/y is served as ghcr.io has it, in both spellings.
    for (const p of ['/v2/x/y/manifests/v1?ns=ghcr.io', '/v2/ghcr.io/x/y/manifests/v1']) {
      const g = await call('GET', p, { authorization: basic(READER) });
      expect(g.status, p).toBe(200);
      expect(g.digest).toBe(img.ghcrXY!.manifestDigest);
    }
    expect(await tagLink('ghcr.io/x/y', 'v1')).toBe(img.ghcrXY!.manifestDigest);
  });

  it('the catalog lists only what the caller may pull', async () => {
    const list = async (who: Record<string, string>) => (JSON.parse((await call('GET', '/v2/_catalog', who)).body.toString()) as { repositories: string[] }).repositories;
    const admin = await list({ authorization: basic(ADMIN) });
    expect(admin).toEqual(expect.arrayContaining(['acme/app', 'library/secret', 'ghcr.io/acme/secret']));
    const dev = await list({ authorization: basic(DEV) });
    expect(dev).toContain('acme/app');
    expect(dev).not.toContain('library/secret');
    expect(dev).not.toContain('ghcr.io/acme/secret');
    // Paging skips what is hidden instead of returning short or empty pages.
    const first = await call('GET', '/v2/_catalog?n=1', { authorization: basic(DEV) });
    expect((JSON.parse(first.body.toString()) as { repositories: string[] }).repositories).toEqual(['acme/app']);
  });

  it('a request line in absolute form meets the same gate', async () => {
    const closed = await startAirlock(config(path.join(work, 'closed'), ['acme/**'], 'none'));
    try {
      const anon = await rawRequest(closed.url, `http://${closed.host}/v2/acme/app/manifests/v1`);
      expect(anon.status).toBe(401);
      const denied = await rawRequest(closed.url, `http://elsewhere.example/v2/ghcr.io/acme/secret/manifests/v1`, { headers: { authorization: basic(DEV) } });
      expect(denied.status).toBe(403);
      const allowed = await rawRequest(closed.url, `http://${closed.host}/v2/`, { headers: { authorization: basic(DEV) } });
      expect(allowed.status).toBe(200);
    } finally {
      await closed.stop();
    }
  });
});
