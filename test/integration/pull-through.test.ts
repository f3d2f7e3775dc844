/**
 * Pull-through with real parts: Distribution with token auth as the upstream (behind a counting,
 * fault-injecting proxy), airlock in front, skopeo as the client.
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { digestBytes } from '../../src/oci/digest.js';
import { fillsSettled, startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { generateImage, generateIndex, type GeneratedImage } from '../helpers/images.js';
import { pullToLayout, skopeoCopy } from '../helpers/skopeo.js';
import { READER, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

let work: string;
let up: TestUpstream;
const img: Record<string, GeneratedImage> = {};
let n = 0;

async function airlockFor(extra = '', upstreamExtra = '', level = 'warn'): Promise<RunningAirlock> {
  const root = path.join(work, `store-${n++}`);
  return startAirlock(
    [
      `storage:\n  root: ${root}`,
      `log:\n  level: ${level}`,
      'upstreams:',
      '  docker.io:',
      `    url: ${up.proxy.url}`,
      `    username: ${READER.user}`,
      `    password: ${READER.password}`,
      '    timeouts:\n      read: 5s\n      connect: 2s',
      '    retries: 2',
      upstreamExtra,
      '  ghcr.io:',
      `    url: ${up.proxy.url}`,
      'defaultUpstream: docker.io',
      extra,
    ].join('\n'),
  );
}

async function pull(a: RunningAirlock, ref: string, name: string): Promise<{ manifestDigest: string; blobs: string[] }> {
  return pullToLayout(`docker://${a.host}/${ref}`, path.join(work, `pull-${name}-${n++}`), { all: true });
}

/** Every file in the store, with nothing left in the temp area. */
async function storeFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(path.relative(root, p));
    }
  };
  await walk(root);
  return out;
}

/** No blob in the store whose bytes differ from its digest. */
async function assertStoreVerified(root: string): Promise<number> {
  const files = (await storeFiles(root)).filter((f) => f.startsWith('docker/registry/v2/blobs/') && f.endsWith('/data'));
  for (const f of files) {
    const hex = f.split('/').slice(-2, -1)[0]!;
    expect(digestBytes(await readFile(path.join(root, f))).hex).toBe(hex);
  }
  expect((await storeFiles(root)).filter((f) => f.startsWith('.airlock/tmp/'))).toEqual([]);
  return files.length;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-pt-'));
  up = await startTestUpstream({ privateRepositories: ['private/app'] });
  img.multi = await generateImage(path.join(work, 'g-multi'), { layers: 4, layerSize: 700_000, format: 'oci' });
  img.index = await generateIndex(path.join(work, 'g-index'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 2, layerSize: 300_000, format: 'oci' });
  img.docker = await generateImage(path.join(work, 'g-docker'), { layers: 2, layerSize: 400_000, format: 'docker' });
  img.big = await generateImage(path.join(work, 'g-big'), { layers: 1, layerSize: 6_000_000, format: 'oci' });
  await up.push(img.multi, 'library/multi', '1.0');
  await up.push(img.index, 'library/index', 'latest');
  await up.push(img.docker, 'team/dockerimg', 'v2');
  await up.push(img.multi, 'private/app', '1.0');
  await up.push(img.big, 'library/big', 'v1');
  await up.push(img.docker, 'org/app', '1.4');
}, 300_000);

afterAll(async () => {
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

afterEach(() => up.proxy.reset());

describe('cold and warm pulls', () => {
  it('pulls a multi-layer image cold, stores the standard layout, and pulls it again with zero upstream blob bytes', async () => {
    const a = await airlockFor();
    try {
      const first = await pull(a, 'library/multi:1.0', 'multi');
      expect(first.manifestDigest).toBe(img.multi!.manifestDigest);
      for (const b of img.multi!.blobs) expect(first.blobs).toContain(b.digest);
      const layerBytes = img.multi!.blobs.reduce((s, b) => s + b.size, 0);
      expect(up.proxy.blobBytes()).toBe(layerBytes);
      // The standard layout, exactly.
      const root = a.config.storage.root;
      const v2 = path.join(root, 'docker/registry/v2');
      const m = img.multi!.manifestDigest.slice(7);
      expect(await readFile(path.join(v2, 'repositories/library/multi/_manifests/tags/1.0/current/link'), 'utf8')).toBe(img.multi!.manifestDigest);
      expect(await readFile(path.join(v2, `repositories/library/multi/_manifests/revisions/sha256/${m}/link`), 'utf8')).toBe(img.multi!.manifestDigest);
      for (const b of img.multi!.blobs) {
        const hex = b.digest.slice(7);
        expect((await stat(path.join(v2, `blobs/sha256/${hex.slice(0, 2)}/${hex}/data`))).size).toBe(b.size);
        expect(await readFile(path.join(v2, `repositories/library/multi/_layers/sha256/${hex}/link`), 'utf8')).toBe(b.digest);
      }
      await assertStoreVerified(root);

      up.proxy.reset();
      const second = await pull(a, 'library/multi:1.0', 'multi2');
      expect(second.manifestDigest).toBe(img.multi!.manifestDigest);
      expect(up.proxy.blobBytes()).toBe(0);
      expect(up.proxy.manifestRequests('GET')).toBe(0);
    } finally {
      await a.stop();
    }
  });

  it('pulls a multi-arch index with all its children, and a Docker schema2 image', async () => {
    const a = await airlockFor();
    try {
      const idx = await pull(a, 'library/index:latest', 'index');
      expect(idx.manifestDigest).toBe(img.index!.manifestDigest);
      for (const c of img.index!.children) expect(idx.blobs).toContain(c.manifestDigest);
      for (const b of img.index!.blobs) expect(idx.blobs).toContain(b.digest);
      const d = await pull(a, 'team/dockerimg:v2', 'docker');
      expect(d.manifestDigest).toBe(img.docker!.manifestDigest);
      // Single-component names get library/ (what Docker's registry-mirrors relies on).
      const r = await request(`${a.url}/v2/index/manifests/latest`, { method: 'HEAD', headers: { accept: img.index!.mediaType } });
      await r.body.dump();
      expect(r.headers['docker-content-digest']).toBe(img.index!.manifestDigest);
      await assertStoreVerified(a.config.storage.root);
    } finally {
      await a.stop();
    }
  });

  it('pulls from a private repository with the upstream credentials, never leaking them to logs', async () => {
    // Debug logs: the most that is ever written, and still no credential in it.
    const a = await airlockFor('', '', 'trace');
    try {
      const p = await pull(a, 'private/app:1.0', 'private');
      expect(p.manifestDigest).toBe(img.multi!.manifestDigest);
      expect(up.tokens.requests.some((t) => t.user === READER.user)).toBe(true);
      const logs = JSON.stringify(a.logs);
      expect(a.logs.length).toBeGreaterThan(5);
      expect(logs).not.toContain(READER.password);
      expect(logs).not.toContain(Buffer.from(`${READER.user}:${READER.password}`).toString('base64'));
      expect(logs).not.toMatch(/Bearer [A-Za-z0-9_-]{20,}/);
    } finally {
      await a.stop();
    }
  });

  it('16 concurrent cold pulls of one image cost the upstream each blob exactly once', async () => {
    const a = await airlockFor();
    try {
      const results = await Promise.all(Array.from({ length: 16 }, (_, i) => pull(a, 'library/big:v1', `c${i}`)));
      for (const r of results) expect(r.manifestDigest).toBe(img.big!.manifestDigest);
      for (const b of img.big!.blobs) expect(up.proxy.blobGets(b.digest)).toBe(1);
      const size = img.big!.blobs.reduce((s, b) => s + b.size, 0);
      expect(up.proxy.blobBytes() / size).toBeLessThanOrEqual(1.0);
      await assertStoreVerified(a.config.storage.root);
    } finally {
      await a.stop();
    }
  });
});

describe('a blob removed from the store', () => {
  /**
   * Pulls library/multi, runs `remove` on one of its layers, then GETs it: the same bytes, the
   * upstream asked for them once more, and the blob stored again.
   */
  async function removedThenServed(name: string, remove: (a: RunningAirlock, file: string) => Promise<void>): Promise<void> {
    const a = await airlockFor();
    try {
      await pull(a, 'library/multi:1.0', name);
      const layer = img.multi!.blobs.find((b) => b.mediaType.includes('layer'))!;
      const hex = layer.digest.slice(7);
      const file = path.join(a.config.storage.root, `docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`);
      await remove(a, file);
      up.proxy.reset();
      const r = await request(`${a.url}/v2/library/multi/blobs/${layer.digest}`);
      const body = Buffer.from(await r.body.arrayBuffer());
      expect(r.statusCode).toBe(200);
      expect(Number(r.headers['content-length'])).toBe(layer.size);
      expect(digestBytes(body, 'sha256').toString()).toBe(layer.digest);
      expect(up.proxy.blobBytes()).toBe(layer.size);
      await fillsSettled(a);
      expect((await stat(file)).size).toBe(layer.size);
    } finally {
      await a.stop();
    }
  }

  it('while it is being served is filled again from the upstream (the same bytes), not answered 404', () =>
    removedThenServed('removed', async (a, file) => {
      // Eviction or gc taking the blob between the lookup and the read: the window, made certain.
      const blobs = a.store.blobs;
      const open = blobs.open.bind(blobs);
      blobs.open = async (d, range) => {
        blobs.open = open;
        await rm(path.dirname(file), { recursive: true });
        return open(d, range);
      };
    }));

  it('by another process (gc, a replica evicting) is filled again, though this process recalls its size', () =>
    removedThenServed('gone', (_a, file) => rm(path.dirname(file), { recursive: true })));
});

describe('clients of one fill', () => {
  it('a client that keeps up, a slow one and a late one all get every byte of a fill, fetched once', async () => {
    // The fill keeps its newest 1 MiB in memory: the fast client is served from there, the slow
    // one falls more than that behind and the late one starts outside it, so both read the
    // staged file (and then the stored blob) instead.
    const a = await airlockFor();
    try {
      const layer = img.big!.blobs.find((b) => b.size > 5_000_000)!;
      up.proxy.faults.slowBlobs = 4_000_000;
      const url = `${a.url}/v2/library/big/blobs/${layer.digest}`;
      const read = async (opts: { delayFirstMs?: number; pauseMs?: number }) => {
        if (opts.delayFirstMs) await new Promise((r) => setTimeout(r, opts.delayFirstMs));
        const r = await request(url);
        expect(r.statusCode).toBe(200);
        const parts: Buffer[] = [];
        for await (const c of r.body) {
          parts.push(c as Buffer);
          if (opts.pauseMs) await new Promise((res) => setTimeout(res, opts.pauseMs));
        }
        return digestBytes(Buffer.concat(parts)).toString();
      };
      const got = await Promise.all([read({}), read({ pauseMs: 40 }), read({ delayFirstMs: 900 })]);
      expect(got).toEqual([layer.digest, layer.digest, layer.digest]);
      expect(up.proxy.blobGets(layer.digest)).toBe(1);
      await assertStoreVerified(a.config.storage.root);
    } finally {
      await a.stop();
    }
  });
});

describe('upstream behaviour', () => {
  it('follows blob redirects to another origin without Authorization, and relative ones', async () => {
    for (const mode of ['cdn', 'relative'] as const) {
      const a = await airlockFor();
      try {
        up.proxy.reset();
        up.proxy.faults.redirectBlobs = mode;
        const p = await pull(a, 'team/dockerimg:v2', `redir-${mode}`);
        expect(p.manifestDigest).toBe(img.docker!.manifestDigest);
        if (mode === 'cdn') {
          expect(up.proxy.cdn.requests).toBeGreaterThanOrEqual(img.docker!.blobs.length);
          expect(up.proxy.cdn.rejectedWithAuth).toBe(0);
        }
        await assertStoreVerified(a.config.storage.root);
      } finally {
        await a.stop();
      }
    }
  });

  it('a corrupted blob is never stored; the pull fails; after the upstream is fixed it succeeds', async () => {
    const a = await airlockFor();
    try {
      const layer = img.docker!.blobs[1]!;
      up.proxy.faults.corruptBlob = layer.digest;
      await expect(pull(a, 'team/dockerimg:v2', 'corrupt')).rejects.toThrow();
      const root = a.config.storage.root;
      const hex = layer.digest.slice(7);
      await expect(stat(path.join(root, `docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`))).rejects.toThrow();
      // skopeo gives up at the first failed layer; the image's other fills go on without it
      // (a client that leaves does not abort a fill) and hold temp files until they finish.
      for (let i = 0; i < 200 && a.registry.fillsInFlight > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(a.registry.fillsInFlight).toBe(0);
      await assertStoreVerified(root);
      // The client sees a failed transfer or an error status, never a clean 200 with wrong bytes.
      const r = await request(`${a.url}/v2/team/dockerimg/blobs/${layer.digest}`).catch((e: unknown) => e as Error);
      if (!(r instanceof Error)) {
        const got = await r.body.arrayBuffer().then((b) => Buffer.from(b), (e: unknown) => e as Error);
        if (r.statusCode === 200) expect(got).toBeInstanceOf(Error);
        else expect(r.statusCode).toBe(502);
      }
      // A large blob whose corruption is found while the client is already receiving it: the
      // transfer breaks before the last byte.
      const big = img.big!.blobs[1]!;
      up.proxy.faults.corruptBlob = big.digest;
      const r2 = await request(`${a.url}/v2/library/big/blobs/${big.digest}`);
      expect(r2.statusCode).toBe(200);
      await expect(r2.body.arrayBuffer()).rejects.toThrow();
      const bhex = big.digest.slice(7);
      await expect(stat(path.join(root, `docker/registry/v2/blobs/sha256/${bhex.slice(0, 2)}/${bhex}/data`))).rejects.toThrow();
      up.proxy.faults.corruptBlob = undefined;
      const ok = await pull(a, 'team/dockerimg:v2', 'fixed');
      expect(ok.manifestDigest).toBe(img.docker!.manifestDigest);
      await assertStoreVerified(root);
    } finally {
      await a.stop();
    }
  });

  it('a connection cut mid-blob is resumed with a Range request (and restarted when Range is ignored)', async () => {
    for (const ignoreRange of [false, true]) {
      const a = await airlockFor();
      try {
        up.proxy.reset();
        const layer = img.big!.blobs[1]!;
        up.proxy.faults.cutBlob = { afterBytes: 2_500_000, times: 1, digest: layer.digest };
        up.proxy.faults.ignoreRange = ignoreRange;
        const p = await pull(a, 'library/big:v1', `cut-${ignoreRange}`);
        expect(p.manifestDigest).toBe(img.big!.manifestDigest);
        expect(p.blobs).toContain(layer.digest);
        expect(up.proxy.blobGets(layer.digest)).toBe(2);
        if (!ignoreRange) expect(up.proxy.blobBytes()).toBeLessThan(layer.size + 1_000_000);
        await assertStoreVerified(a.config.storage.root);
      } finally {
        await a.stop();
      }
    }
  });

  it('keeps serving warm content when the upstream goes away; cold requests fail fast and clearly', async () => {
    const a = await airlockFor('cache:\n  tagTTL: 0s');
    try {
      await pull(a, 'team/dockerimg:v2', 'warm');
      up.proxy.faults.down = true;
      const t0 = Date.now();
      const again = await pull(a, 'team/dockerimg:v2', 'warm-again');
      expect(again.manifestDigest).toBe(img.docker!.manifestDigest);
      const byDigest = await pull(a, `team/dockerimg@${img.docker!.manifestDigest}`, 'warm-digest');
      expect(byDigest.manifestDigest).toBe(img.docker!.manifestDigest);
      const cold = await request(`${a.url}/v2/library/multi/manifests/1.0`);
      const body = (await cold.body.json()) as { errors: Array<{ code: string; message: string }> };
      expect(cold.statusCode).toBe(503);
      expect(body.errors[0]!.code).toBe('UNAVAILABLE');
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(a.logs.some((l) => l.msg === 'upstream unavailable; serving the cached tag')).toBe(true);
    } finally {
      await a.stop();
    }
  });
});

describe('blob requests on a miss', () => {
  it('HEAD asks the upstream with a HEAD and downloads nothing; a Range on a miss gets the whole body', async () => {
    const a = await airlockFor();
    try {
      const layer = img.multi!.blobs[2]!;
      const head = await request(`${a.url}/v2/library/multi/blobs/${layer.digest}`, { method: 'HEAD' });
      await head.body.dump();
      expect(head.statusCode).toBe(200);
      expect(Number(head.headers['content-length'])).toBe(layer.size);
      expect(head.headers['docker-content-digest']).toBe(layer.digest);
      expect(up.proxy.blobGets()).toBe(0);
      expect(up.proxy.records.some((r) => r.method === 'HEAD' && r.path.endsWith(layer.digest))).toBe(true);
      const ranged = await request(`${a.url}/v2/library/multi/blobs/${layer.digest}`, { headers: { range: 'bytes=10-19' } });
      const body = Buffer.from(await ranged.body.arrayBuffer());
      expect(ranged.statusCode).toBe(200);
      expect(body.length).toBe(layer.size);
      expect(digestBytes(body).toString()).toBe(layer.digest);
      // Once stored and linked (the commit may finish just after the client got its last byte),
      // the same Range is a 206.
      const link = path.join(a.config.storage.root, `docker/registry/v2/repositories/library/multi/_layers/sha256/${layer.digest.slice(7)}/link`);
      for (let i = 0; i < 100 && !(await stat(link).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 50));
      const again = await request(`${a.url}/v2/library/multi/blobs/${layer.digest}`, { headers: { range: 'bytes=10-19' } });
      const part = Buffer.from(await again.body.arrayBuffer());
      expect(again.statusCode).toBe(206);
      expect(part.equals(body.subarray(10, 20))).toBe(true);
      const missing = await request(`${a.url}/v2/library/multi/blobs/sha256:${'0'.repeat(64)}`, { method: 'HEAD' });
      await missing.body.dump();
      expect(missing.statusCode).toBe(404);
    } finally {
      await a.stop();
    }
  });
});

describe('routing', () => {
  it('routes ?ns= and a host in the path to the configured upstream, storing under <host>/<name>; refuses others', async () => {
    const a = await airlockFor();
    try {
      const accept = { accept: img.docker!.mediaType };
      const viaNs = await request(`${a.url}/v2/org/app/manifests/1.4?ns=ghcr.io`, { headers: accept });
      await viaNs.body.dump();
      expect(viaNs.statusCode).toBe(200);
      expect(viaNs.headers['docker-content-digest']).toBe(img.docker!.manifestDigest);
      expect(await readFile(path.join(a.config.storage.root, 'docker/registry/v2/repositories/ghcr.io/org/app/_manifests/tags/1.4/current/link'), 'utf8')).toBe(img.docker!.manifestDigest);
      const viaPath = await pullToLayout(`docker://${a.host}/ghcr.io/org/app:1.4`, path.join(work, `pull-path-${n++}`));
      expect(viaPath.manifestDigest).toBe(img.docker!.manifestDigest);
      const hub = await request(`${a.url}/v2/library/multi/manifests/1.0?ns=docker.io`, { method: 'HEAD', headers: { accept: img.multi!.mediaType } });
      await hub.body.dump();
      expect(hub.headers['docker-content-digest']).toBe(img.multi!.manifestDigest);
      for (const url of ['/v2/org/app/manifests/1.4?ns=quay.io', '/v2/quay.io/org/app/manifests/1.4']) {
        const before = up.proxy.records.length;
        const r = await request(`${a.url}${url}`);
        const body = (await r.body.json()) as { errors: Array<{ code: string; message: string }> };
        expect(r.statusCode).toBe(403);
        expect(body.errors[0]!.code).toBe('DENIED');
        expect(body.errors[0]!.message).toContain('quay.io');
        expect(up.proxy.records.length).toBe(before);
      }
    } finally {
      await a.stop();
    }
  });

  it('revalidates a tag with HEAD only after tagTTL, and never revalidates a digest', async () => {
    const a = await airlockFor('cache:\n  tagTTL: 1s');
    try {
      const accept = { accept: img.docker!.mediaType };
      const get = async (ref: string) => {
        const r = await request(`${a.url}/v2/team/dockerimg/manifests/${ref}`, { headers: accept });
        await r.body.dump();
        return r.statusCode;
      };
      expect(await get('v2')).toBe(200);
      expect(up.proxy.manifestRequests('GET')).toBe(1);
      for (let i = 0; i < 20; i++) expect(await get('v2')).toBe(200);
      expect(up.proxy.manifestRequests()).toBe(1);
      await new Promise((r) => setTimeout(r, 1100));
      expect(await get('v2')).toBe(200);
      expect(up.proxy.manifestRequests('HEAD')).toBe(1);
      expect(up.proxy.manifestRequests('GET')).toBe(1);
      for (let i = 0; i < 5; i++) expect(await get(img.docker!.manifestDigest)).toBe(200);
      expect(up.proxy.manifestRequests()).toBe(2);
    } finally {
      await a.stop();
    }
  });

  it('answers tags/list from the upstream merged with local tags', async () => {
    const a = await airlockFor();
    try {
      const r = await request(`${a.url}/v2/library/multi/tags/list`);
      expect(((await r.body.json()) as { tags: string[] }).tags).toEqual(['1.0']);
    } finally {
      await a.stop();
    }
  });
});

describe('client compatibility', () => {
  it('skopeo copies through airlock into another registry with identical digests', async () => {
    const a = await airlockFor();
    try {
      await skopeoCopy(`docker://${a.host}/library/index:latest`, `dir:${path.join(work, `copy-${n++}`)}`, { all: true });
    } finally {
      await a.stop();
    }
  });
});
