/**
 * The web console's JSON API (/ui/api/…) with real parts: Distribution with token auth upstream
 * behind the counting proxy, airlock in-process with logins and rules, skopeo pulling and pushing
 * through it. What the pages show is checked against the images generated and pulled; actions
 * are checked by what the registry itself answers afterwards and by the files on disk. Next to
 * each happy path the hostile one: a user without rights sees nothing of a forbidden repository
 * (lists, pages, fills), deletes without the right (403) or with deletes off (405), no login.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { generateImage, generateIndex, type GeneratedImage } from '../helpers/images.js';
import { skopeoCopy } from '../helpers/skopeo.js';
import { snapshot } from '../helpers/store-files.js';
import { READER, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const ADMIN = basic('admin', 'admin-pw');
const DEV = basic('dev', 'dev-pw');
const VIEWER = basic('viewer', 'viewer-pw');
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';

let work: string;
let up: TestUpstream;
let a: RunningAirlock;
const img = {} as Record<'app' | 'multi' | 'secret' | 'pf' | 'tool', GeneratedImage>;
const store = () => path.join(work, 'store');

function mirrorYml(extra: string[] = []): string {
  return [
    'listen: 127.0.0.1:0',
    `storage:\n  root: ${store()}\n  delete:\n    enabled: true`,
    'log:\n  level: warn',
    'cache:\n  tagTTL: 1h',
    `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}\n  rules:`,
    '    - users: ["admin"]\n      repositories: ["**"]\n      actions: [pull, push, delete]',
    '    - users: ["dev"]\n      repositories: ["acme/**", "library/**"]\n      actions: [pull, push]',
    '    - users: ["viewer"]\n      repositories: ["library/app", "library/multi", "library/pf"]\n      actions: [pull]',
    'push:\n  repositories: ["acme/**"]',
    'prefetch:\n  images: ["library/pf:1", "library/secret:v1"]',
    'upstreams:',
    `  docker.io:\n    url: ${up.proxy.url}\n    username: ${READER.user}\n    password: ${READER.password}`,
    ...extra,
    '',
  ].join('\n');
}

interface Answer<T = Record<string, unknown>> {
  status: number;
  json: T;
  headers: Record<string, string | string[] | undefined>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function api<T = any>(method: string, p: string, auth?: string, body?: unknown, base = a.url): Promise<Answer<T>> {
  const r = await request(`${base}/ui/api${p}`, {
    method: method as 'GET',
    headers: { ...(auth ? { authorization: auth } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.body.text();
  return { status: r.statusCode, json: (text ? JSON.parse(text) : {}) as T, headers: r.headers };
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const pull = (ref: string, creds = 'admin:admin-pw') => skopeoCopy(`docker://${a.host}/${ref}`, `dir:${path.join(work, `pull-${Math.random().toString(36).slice(2)}`)}`, { srcCreds: creds });

/** Distinct blob and manifest bytes of an image, as the console sizes it. */
function imageBytes(i: GeneratedImage): number {
  const seen = new Map<string, number>([[i.manifestDigest, i.manifestBytes.byteLength]]);
  for (const b of i.blobs) seen.set(b.digest, b.size);
  for (const c of i.children) seen.set(c.manifestDigest, c.manifestBytes.byteLength);
  return [...seen.values()].reduce((x, y) => x + y, 0);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-console-'));
  await writeFile(path.join(work, 'htpasswd'), ['admin', 'dev', 'viewer'].map((u) => `${u}:${bcrypt.hashSync(`${u}-pw`, 5)}`).join('\n') + '\n');
  up = await startTestUpstream();
  img.app = await generateImage(path.join(work, 'g-app'), { layers: 2, layerSize: 40_000, format: 'oci' });
  img.multi = await generateIndex(path.join(work, 'g-multi'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }], layers: 1, layerSize: 20_000, format: 'oci' });
  img.secret = await generateImage(path.join(work, 'g-secret'), { layers: 1, layerSize: 600_000, format: 'oci' });
  img.pf = await generateImage(path.join(work, 'g-pf'), { layers: 1, layerSize: 30_000, format: 'docker' });
  img.tool = await generateImage(path.join(work, 'g-tool'), { layers: 1, layerSize: 10_000, format: 'oci' });
  await up.push(img.app, 'library/app', 'v1');
  await up.push(img.multi, 'library/multi', 'v2');
  await up.push(img.secret, 'library/secret', 'v1');
  await up.push(img.pf, 'library/pf', '1');
  a = await startAirlock(mirrorYml());
  await pull('library/app:v1');
  await skopeoCopy(`docker://${a.host}/library/multi:v2`, `dir:${path.join(work, 'pull-multi')}`, { srcCreds: 'admin:admin-pw', all: true });
  await skopeoCopy(img.tool.source, `docker://${a.host}/acme/tool:1`, { destCreds: 'dev:dev-pw' });
}, 120_000);

afterAll(async () => {
  await a?.stop();
  await up?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('console API: what the pages show', () => {
  it('lists the pulled and pushed repositories with their sizes, tags and kinds', async () => {
    const r = await eventually(() => api('GET', '/repositories?sort=name', ADMIN), (x) => x.json.items?.length === 3);
    expect(r.status).toBe(200);
    expect(r.json.total).toBe(3);
    const byName = Object.fromEntries((r.json.items as Array<{ name: string }>).map((x) => [x.name, x]));
    expect(byName['library/app']).toMatchObject({ kind: 'mirror', upstream: 'docker.io', images: 1, tags: 1, size: imageBytes(img.app), pinned: false });
    expect(byName['library/multi']).toMatchObject({ kind: 'mirror', images: 1, tags: 1, size: imageBytes(img.multi) });
    expect(byName['acme/tool']).toMatchObject({ kind: 'local', upstream: null, images: 1, tags: 1, size: imageBytes(img.tool) });
    const sized = await api('GET', '/repositories?sort=size&order=desc&limit=1', ADMIN);
    const biggest = [...(r.json.items as Array<{ name: string; size: number }>)].sort((x, y) => y.size - x.size)[0]!.name;
    expect(sized.json.items.map((x: { name: string }) => x.name)).toEqual([biggest]);
    expect((await api('GET', '/repositories?q=MULTI', ADMIN)).json.items.map((x: { name: string }) => x.name)).toEqual(['library/multi']);
  });

  it('the repository and image pages show the digests, layers and config of what was pulled', async () => {
    const repo = await api('GET', '/repository?name=library/app', ADMIN);
    expect(repo.status).toBe(200);
    expect(repo.json.tags).toEqual([expect.objectContaining({ tag: 'v1', digest: img.app.manifestDigest, mediaType: img.app.mediaType, size: imageBytes(img.app) })]);
    expect(repo.json.untagged).toEqual([]);
    const image = await api('GET', '/image?name=library/app&ref=v1', ADMIN);
    expect(image.status).toBe(200);
    expect(image.json).toMatchObject({ name: 'library/app', reference: 'v1', digest: img.app.manifestDigest, kind: 'manifest', tags: ['v1'], pinned: false });
    const cfg = img.app.blobs.find((b) => b.mediaType.includes('config'))!;
    const layers = img.app.blobs.filter((b) => b !== cfg);
    expect(image.json.layers).toEqual(layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })));
    expect(image.json.config).toMatchObject({ digest: cfg.digest, size: cfg.size, os: 'linux' });
    expect(image.json.referrers).toEqual([]);

    const index = await api('GET', `/image?name=library/multi&ref=${img.multi.manifestDigest}`, ADMIN);
    expect(index.json).toMatchObject({ kind: 'index', digest: img.multi.manifestDigest, tags: ['v2'] });
    expect(index.json.platforms.map((p: { digest: string; platform: { architecture: string } }) => [p.platform.architecture, p.digest])).toEqual(img.multi.children.map((c, i) => [['amd64', 'arm64'][i], c.manifestDigest]));
    // A child digest of the index: the platform page.
    const child = await api('GET', `/image?name=library/multi&ref=${img.multi.children[1]!.manifestDigest}`, ADMIN);
    expect(child.json).toMatchObject({ kind: 'manifest', tags: [] });
    expect(child.json.config.architecture).toBe('arm64');
    // The children of a stored index are not "untagged" images.
    expect((await api('GET', '/repository?name=library/multi', ADMIN)).json.untagged).toEqual([]);
  });

  it('groups the referrers of an image by artifact type', async () => {
    // An OCI 1.1 artifact pushed with a subject: its config is the empty descriptor.
    const empty = Buffer.from('{}');
    const emptyDigest = `sha256:${createHash('sha256').update(empty).digest('hex')}`;
    const up1 = await request(`${a.url}/v2/acme/tool/blobs/uploads/?digest=${emptyDigest}`, { method: 'POST', headers: { authorization: DEV, 'content-type': 'application/octet-stream' }, body: empty });
    await up1.body.dump();
    expect(up1.statusCode).toBe(201);
    const artifact = (type: string, n: string) => Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: type,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 }],
      subject: { mediaType: img.tool.mediaType, digest: img.tool.manifestDigest, size: img.tool.manifestBytes.byteLength },
      annotations: { n },
    }));
    const pushed: string[] = [];
    for (const [type, n] of [['application/vnd.dev.sbom', '1'], ['application/vnd.dev.sig', '2'], ['application/vnd.dev.sbom', '3']] as const) {
      const body = artifact(type, n);
      const d = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      const r = await request(`${a.url}/v2/acme/tool/manifests/${d}`, { method: 'PUT', headers: { authorization: DEV, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body });
      await r.body.dump();
      expect(r.statusCode).toBe(201);
      pushed.push(d);
    }
    const image = await api('GET', '/image?name=acme/tool&ref=1', ADMIN);
    expect(image.json.referrers.map((g: { artifactType: string; items: unknown[] }) => [g.artifactType, g.items.length])).toEqual([['application/vnd.dev.sbom', 2], ['application/vnd.dev.sig', 1]]);
    expect(image.json.referrers[1].items[0]).toMatchObject({ digest: pushed[1], annotations: { n: '2' } });
  });

  it('never asks an upstream on a read: an image the store lacks is 404; a malformed ref is 400', async () => {
    up.proxy.reset();
    const missing = await api('GET', '/image?name=library/app&ref=v9', ADMIN);
    expect(missing.status).toBe(404);
    expect(missing.json.errors[0].code).toBe('MANIFEST_UNKNOWN');
    expect((await api('GET', '/repository?name=library/nothing', ADMIN)).status).toBe(404);
    expect(up.proxy.records).toEqual([]);
    expect((await api('GET', '/image?name=library/app&ref=bad%20ref', ADMIN)).status).toBe(400);
    expect((await api('GET', '/repositories?sort=bogus', ADMIN)).status).toBe(400);
  });

  it('pull counts and last pulled move with pulls, not with HEADs', async () => {
    const before = (await api('GET', '/repositories?q=library/app', ADMIN)).json.items[0];
    await new Promise((r) => setTimeout(r, 5));
    // A client checking whether a tag moved (docker and containerd HEAD first): not a pull.
    const head = await request(`${a.url}/v2/library/app/manifests/${img.app.manifestDigest}`, { method: 'HEAD', headers: { accept: ACCEPT, authorization: ADMIN } });
    await head.body.dump();
    expect(head.statusCode).toBe(200);
    expect((await api('GET', '/repositories?q=library/app', ADMIN)).json.items[0].pulls).toBe(before.pulls);
    const r = await request(`${a.url}/v2/library/app/manifests/${img.app.manifestDigest}`, { headers: { accept: ACCEPT, authorization: ADMIN } });
    await r.body.dump();
    expect(r.statusCode).toBe(200);
    const after = (await api('GET', '/repositories?q=library/app', ADMIN)).json.items[0];
    expect(after.pulls).toBe(before.pulls + 1);
    expect(after.lastPulled).toBeGreaterThan(before.lastPulled ?? 0);
    const image = await api('GET', `/image?name=library/app&ref=${img.app.manifestDigest}`, ADMIN);
    expect(image.json.pulls).toBeGreaterThanOrEqual(2);
    expect(image.json.lastPulled).toBe(after.lastPulled);
  });

  it('the overview counts the store, the traffic and the upstream', async () => {
    const o = await api('GET', '/overview', ADMIN);
    expect(o.status).toBe(200);
    expect(o.json.store).toMatchObject({ repositories: 3, images: 3, maxSize: null, readOnly: false });
    expect(o.json.traffic.hour.hits).toHaveLength(60);
    expect(o.json.traffic.day.misses).toHaveLength(144);
    expect(o.json.upstreams).toEqual([expect.objectContaining({ name: 'docker.io', url: up.proxy.url, state: 'ok' })]);
    expect(o.json.upstreams[0].requests).toBeGreaterThan(0);
    // Everything so far was a miss filled from the upstream, served to skopeo: the current buckets hold it.
    expect(o.json.totals.hour.misses).toBeGreaterThan(0);
    expect(o.json.totals.hour.hits).toBeGreaterThan(0);
    expect(o.json.totals.hour.fetchedBytes).toBeGreaterThan(img.app.totalBytes);
    expect(o.json.totals.hour.servedBytes).toBeGreaterThan(img.app.totalBytes);
    expect(o.json.traffic.hour.misses.at(-1)).toBeGreaterThan(0);
    expect(o.json.totals.day.misses).toBe(o.json.totals.hour.misses);
  });
});

describe('console API: a user sees only what they may pull', () => {
  it('a forbidden repository is absent from lists and 404 on its pages', async () => {
    await pull('library/secret:v1');
    await eventually(() => api('GET', '/repositories', ADMIN), (x) => x.json.total === 4);
    const list = await api('GET', '/repositories?limit=500', VIEWER);
    expect(list.json.items.map((x: { name: string }) => x.name).sort()).toEqual(['library/app', 'library/multi']);
    expect((await api('GET', '/repositories?q=secret', VIEWER)).json.total).toBe(0);
    const page = await api('GET', '/repository?name=library/secret', VIEWER);
    expect(page.status).toBe(404);
    expect(page.json.errors[0].code).toBe('NAME_UNKNOWN');
    expect((await api('GET', '/image?name=library/secret&ref=v1', VIEWER)).status).toBe(404);
    // The same answer as for a repository that does not exist at all.
    const none = await api('GET', '/repository?name=library/nothing', VIEWER);
    expect(none.status).toBe(404);
    expect(none.json.errors[0].code).toBe(page.json.errors[0].code);
    expect((await api('GET', '/overview', VIEWER)).json.store.repositories).toBe(4);
  });

  it('fills in progress show received bytes, to those who may pull the repository only', async () => {
    up.proxy.faults.slowBlobs = 400_000;
    const big = await generateImage(path.join(work, 'g-big'), { layers: 1, layerSize: 1_000_000, format: 'oci' });
    await up.push(big, 'library/secret', 'big');
    const events = await request(`${a.url}/ui/api/events`, { headers: { authorization: ADMIN } });
    expect(events.statusCode).toBe(200);
    expect(events.headers['content-type']).toContain('text/event-stream');
    const pulling = pull('library/secret:big');
    try {
      const o = await eventually(() => api('GET', '/overview', ADMIN), (x) => x.json.fills.length > 0 && x.json.fills[0].received > 0);
      expect(o.json.fills[0]).toMatchObject({ repository: 'library/secret', upstream: 'docker.io', size: big.blobs.find((b) => b.size > 900_000)!.size });
      const viewer = await api('GET', '/overview', VIEWER);
      expect(viewer.json.fills).toEqual([]);
      let text = '';
      for await (const chunk of events.body) {
        text += String(chunk);
        if (text.includes('event: fills') && text.includes('library/secret')) break;
      }
      expect(text).toMatch(/event: fills\ndata: \[\{"id":"docker\.io\/sha256:[0-9a-f]{64}","repository":"library\/secret"/);
    } finally {
      events.body.destroy();
      await pulling;
      up.proxy.faults.slowBlobs = undefined;
    }
  });
});

describe('console API: actions', () => {
  it('deletes a tag through the registry\'s delete path: the registry\'s GET is 404 and tags/list agrees', async () => {
    const del = await api('DELETE', '/image?name=acme/tool&ref=1', ADMIN);
    expect(del.status).toBe(202);
    const get = await request(`${a.url}/v2/acme/tool/manifests/1`, { headers: { accept: ACCEPT, authorization: ADMIN } });
    await get.body.dump();
    expect(get.statusCode).toBe(404);
    const tags = await request(`${a.url}/v2/acme/tool/tags/list`, { headers: { authorization: ADMIN } });
    expect((await tags.body.json() as { tags: string[] | null }).tags ?? []).toEqual([]);
    const repo = await api('GET', '/repository?name=acme/tool', ADMIN);
    expect(repo.json.tags).toEqual([]);
    expect(repo.json.untagged.map((x: { digest: string }) => x.digest)).toEqual([img.tool.manifestDigest]);
    // Again: the tag is gone.
    expect((await api('DELETE', '/image?name=acme/tool&ref=1', ADMIN)).status).toBe(404);
  });

  it('refuses a delete without the right (403), without a login (401), on a hidden repository (404)', async () => {
    const files = await snapshot(store());
    const dev = await api('DELETE', `/image?name=acme/tool&ref=${img.tool.manifestDigest}`, DEV);
    expect(dev.status).toBe(403);
    expect(dev.json.errors[0].code).toBe('DENIED');
    expect((await api('DELETE', `/image?name=acme/tool&ref=${img.tool.manifestDigest}`)).status).toBe(401);
    expect((await api('DELETE', '/image?name=library/secret&ref=v1', VIEWER)).status).toBe(404);
    // A name is a path in the store: one that climbs out never gets there.
    for (const name of ['..%2F..%2Facme%2Ftool', 'acme/../acme/tool', '%2Fetc', 'acme/tool/']) {
      const r = await api('DELETE', `/image?name=${name}&ref=1`, ADMIN);
      expect([name, r.status, r.json.errors[0].code]).toEqual([name, 400, 'NAME_INVALID']);
      expect((await api('GET', `/repository?name=${name}`, ADMIN)).status).toBe(400);
    }
    expect((await api('POST', '/pin', ADMIN, { name: '../x', digest: img.tool.manifestDigest })).status).toBe(400);
    expect((await api('DELETE', '/image?name=acme/tool&ref=..%2F..%2Fx', ADMIN)).status).toBe(400);
    expect(await snapshot(store())).toEqual(files);
  });

  it('pins and unpins; the pin is on disk and survives a rescan', async () => {
    const pin = await api('POST', '/pin', ADMIN, { name: 'library/app', digest: img.app.manifestDigest });
    expect(pin.status).toBe(204);
    expect((await a.store.pins.list()).map((p) => `${p.name}@${p.digest.toString()}`)).toContain(`library/app@${img.app.manifestDigest}`);
    const repo = await api('GET', '/repository?name=library/app', ADMIN);
    expect(repo.json.pinned).toBe(true);
    expect(repo.json.tags[0].pinned).toBe(true);
    expect((await api('GET', '/repositories?q=library/app', ADMIN)).json.items[0].pinned).toBe(true);
    // Hostile: no delete right, a hidden repository, a digest the repository does not hold, no JSON.
    expect((await api('POST', '/pin', DEV, { name: 'library/app', digest: img.app.manifestDigest })).status).toBe(403);
    expect((await api('POST', '/pin', VIEWER, { name: 'library/secret', digest: img.secret.manifestDigest })).status).toBe(404);
    expect((await api('POST', '/pin', ADMIN, { name: 'library/app', digest: img.secret.manifestDigest })).status).toBe(400);
    const r = await request(`${a.url}/ui/api/pin`, { method: 'POST', headers: { authorization: ADMIN, 'content-type': 'text/plain' }, body: '{}' });
    expect(r.statusCode).toBe(415);
    await r.body.dump();
    const unpin = await api('DELETE', `/pin?name=library/app&digest=${img.app.manifestDigest}`, ADMIN);
    expect(unpin.status).toBe(204);
    expect((await a.store.pins.list()).length).toBe(0);
    expect((await api('GET', '/repository?name=library/app', ADMIN)).json.pinned).toBe(false);
  });

  it('prefetches one image now (the upstream saw it), and records it in the prefetch status', async () => {
    const before = await api('GET', '/prefetch', ADMIN);
    expect(before.json).toMatchObject({ every: null, running: false, entries: [{ image: 'library/pf:1', lastRun: null, outcome: null }, { image: 'library/secret:v1' }] });
    // The list names repositories: a user sees only the entries they may pull.
    expect((await api('GET', '/prefetch', VIEWER)).json.entries.map((e: { image: string }) => e.image)).toEqual(['library/pf:1']);
    up.proxy.reset();
    const r = await api('POST', '/prefetch', ADMIN, { image: 'library/pf:1' });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ image: 'library/pf:1', outcome: 'ok', digest: img.pf.manifestDigest });
    expect(up.proxy.records.some((x) => x.path.includes('/library/pf/manifests/'))).toBe(true);
    expect(up.proxy.blobBytes()).toBeGreaterThan(30_000);
    // Prefetched images are pinned: the pages say so at once.
    expect((await api('GET', '/repository?name=library/pf', ADMIN)).json.tags).toEqual([expect.objectContaining({ tag: '1', digest: img.pf.manifestDigest, pinned: true })]);
    // Warming the cache is not a client's pull.
    expect((await api('GET', '/repositories?q=library/pf', ADMIN)).json.items[0]).toMatchObject({ name: 'library/pf', pulls: 0 });
    const after = await api('GET', '/prefetch', ADMIN);
    expect(after.json.entries[0]).toMatchObject({ outcome: 'ok', digest: img.pf.manifestDigest, error: null });
    expect(after.json.entries[0].lastRun).toBeGreaterThan(0);
    // A user who may pull but not pin warms the cache without pinning (pinning takes delete).
    const warmed = await api('POST', '/prefetch', VIEWER, { image: 'library/app:v1' });
    expect(warmed.json).toMatchObject({ outcome: 'ok', digest: img.app.manifestDigest });
    expect((await api('GET', '/repository?name=library/app', ADMIN)).json.pinned).toBe(false);
    // Hostile: a repository the user may not pull, no login, "run all" without administering.
    expect((await api('POST', '/prefetch', VIEWER, { image: 'library/secret:v1' })).status).toBe(403);
    expect((await api('POST', '/prefetch', undefined, { image: 'library/pf:1' })).status).toBe(401);
    expect((await api('POST', '/prefetch/run', DEV)).status).toBe(403);
  });

  it('gc dry run reports without deleting; only administrators may run it', async () => {
    // Deleting the manifest leaves its blobs unused (young: kept by the grace period, and reported).
    expect((await api('DELETE', `/image?name=acme/tool&ref=${img.tool.manifestDigest}`, ADMIN)).status).toBe(202);
    const files = await snapshot(store());
    const r = await api('POST', '/gc', ADMIN, { dryRun: true });
    expect(r.status).toBe(200);
    expect(r.json.report).toMatchObject({ dryRun: true, blobsDeleted: 0 });
    expect(r.json.report.blobsTooYoung).toBeGreaterThan(0);
    expect(await snapshot(store())).toEqual(files);
    expect((await api('POST', '/gc', DEV, { dryRun: true })).status).toBe(403);
    expect((await api('POST', '/gc', ADMIN, { dryRun: 'yes' })).status).toBe(400);
    const m = await api('GET', '/maintenance', ADMIN);
    expect(m.json.gc).toMatchObject({ running: false, last: { dryRun: true } });
    expect(m.json).toMatchObject({ auditEnabled: false, bundles: [], evictions: [] });
    expect((await api('POST', '/verify', ADMIN)).status).toBe(202);
    const v = await eventually(() => api('GET', '/maintenance', ADMIN), (x) => x.json.verify.last !== null);
    expect(v.json.verify.last.report.problems).toEqual([]);
    // Reports name repositories and digests store-wide: a user who is not an administrator sees when, not what.
    const dev = await api('GET', '/maintenance', DEV);
    expect(dev.json.gc.last).toEqual({ at: m.json.gc.last.at, dryRun: true, report: null });
    expect(dev.json.verify.last).toEqual({ at: v.json.verify.last.at, report: null });
  });

  it('asks for a login when anonymous reads are off', async () => {
    const r = await api('GET', '/overview');
    expect(r.status).toBe(401);
    expect((await api('GET', '/repositories')).status).toBe(401);
  });
});

describe('console API: deletes off', () => {
  it('refuses deletes with 405 when storage.delete.enabled is false', async () => {
    const b = await startAirlock(mirrorYml().replace('  delete:\n    enabled: true', '  delete:\n    enabled: false').replace(store(), path.join(work, 'store2')));
    try {
      const r = await api('DELETE', '/image?name=library/app&ref=v1', ADMIN, undefined, b.url);
      expect(r.status).toBe(405);
      expect(r.json.errors[0].code).toBe('UNSUPPORTED');
    } finally {
      await b.stop();
    }
  });
});

describe('console API: another process writes the store', () => {
  it('lists an image another airlock stored once it is first pulled here, not at the next rescan', async () => {
    const root = path.join(work, 'store3');
    const yml = (ui: boolean) => mirrorYml(ui ? [] : ['ui:\n  enabled: false']).replace(store(), root);
    const b = await startAirlock(yml(true));
    const c = await startAirlock(yml(false));
    try {
      await eventually(() => api('GET', '/repositories', ADMIN, undefined, b.url), (x) => x.json.total === 0);
      // Pushed through the other process: b's index has no event for it (its rescan is 5 minutes away).
      await skopeoCopy(img.tool.source, `docker://${c.host}/acme/other:1`, { destCreds: 'dev:dev-pw' });
      await skopeoCopy(`docker://${b.host}/acme/other:1`, `dir:${path.join(work, 'pull-other')}`, { srcCreds: 'dev:dev-pw' });
      const r = await eventually(() => api('GET', '/repositories?q=acme/other', ADMIN, undefined, b.url), (x) => x.json.total === 1, 3_000);
      expect(r.json.items[0]).toMatchObject({ name: 'acme/other', kind: 'local', images: 1, pulls: 1 });
    } finally {
      await c.stop();
      await b.stop();
    }
  });
});

describe('console API: evictions', () => {
  it('recent evictions, the audit log and a failing upstream, shown to those allowed to see them', async () => {
    const root = path.join(work, 'store3');
    const auditFile = path.join(work, 'audit3.log');
    const yml = mirrorYml([`audit:\n  file: ${auditFile}`]).replace(store(), root).replace('  delete:\n    enabled: true', '  maxSize: 700000\n  evictMinAge: 0s\n  delete:\n    enabled: true');
    const b = await startAirlock(yml);
    try {
      const via = (ref: string) => skopeoCopy(`docker://${b.host}/${ref}`, `dir:${path.join(work, `pull-${Math.random().toString(36).slice(2)}`)}`, { srcCreds: 'admin:admin-pw' });
      await via('library/secret:v1');
      await via('library/app:v1');
      await via('library/multi:v2');
      // Above evictAt × maxSize: the least recently served image (library/secret) goes.
      const o = await eventually(() => api('GET', '/overview', ADMIN, undefined, b.url), (x) => x.json.evictions?.length > 0, 15_000);
      expect(o.json.evictions[0]).toMatchObject({ repository: 'library/secret', digest: img.secret.manifestDigest });
      expect(o.json.evictions[0].bytes).toBeGreaterThan(600_000);
      expect(o.json.store.maxSize).toBe(700000);
      expect((await api('GET', '/overview', VIEWER, undefined, b.url)).json.evictions).toEqual([]);
      expect((await api('GET', '/maintenance', VIEWER, undefined, b.url)).json.evictions).toEqual([]);
      expect((await api('GET', '/maintenance', ADMIN, undefined, b.url)).json.evictions).toHaveLength(o.json.evictions.length);
      const gone = await eventually(() => api('GET', '/repositories', ADMIN, undefined, b.url), (x) => !x.json.items.some((r: { name: string }) => r.name === 'library/secret'));
      expect(gone.json.items.map((r: { name: string }) => r.name)).not.toContain('library/secret');

      // A console delete writes the registry's audit line, with who asked.
      expect((await api('DELETE', '/image?name=library/app&ref=v1', ADMIN, undefined, b.url)).status).toBe(202);
      const lines = (await readFile(auditFile, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.audit === 'delete')).toMatchObject({ user: 'admin', stored: 'library/app', kind: 'tag', reference: 'v1' });
      expect(lines.find((l) => l.audit === 'remove')).toMatchObject({ by: 'evict', stored: 'library/secret' });
      // Bundles come from the audit log's tail, for administrators only.
      await appendFile(auditFile, `${JSON.stringify({ time: '2026-12-05T08:00:00.000Z', audit: 'import', bundle: '/media/usb/site.tar', sums: 'x', images: ['a:1', 'b:2'], forced: [], signer: 'key1' })}\nnot json\n`);
      const m = await api('GET', '/maintenance', ADMIN, undefined, b.url);
      expect(m.json.auditEnabled).toBe(true);
      expect(m.json.bundles).toEqual([{ at: Date.parse('2026-12-05T08:00:00.000Z'), event: 'import', name: '/media/usb/site.tar', images: 2, signer: 'key1' }]);
      expect((await api('GET', '/maintenance', VIEWER, undefined, b.url)).json.bundles).toEqual([]);

      // An upstream failing: its last error is shown, never a 5xx of the console's own.
      up.proxy.faults.status = 503;
      try {
        const r = await request(`${b.url}/v2/library/app/manifests/nope`, { headers: { accept: ACCEPT, authorization: ADMIN } });
        await r.body.dump();
        expect(r.statusCode).toBeGreaterThanOrEqual(500);
      } finally {
        up.proxy.faults.status = undefined;
      }
      const failing = await api('GET', '/overview', ADMIN, undefined, b.url);
      expect(failing.status).toBe(200);
      expect(failing.json.upstreams[0].lastError).toMatchObject({ message: 'answered HTTP 503' });
      expect(failing.json.upstreams[0].errors).toBeGreaterThan(0);
    } finally {
      await b.stop();
    }
  });
});
