/**
 * What an upstream (or whatever answers in its place) can make airlock spend: a token, a tags
 * page or an error body without end is cut off at a bound, and a manifest dripped a byte at a
 * time (each byte inside the read timeout) ends at the exchange's deadline, after which the
 * stored tag is served. Real parts: Distribution with token auth behind the fault proxy, and a
 * flood server that streams with backpressure, so what it wrote is what airlock took.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { startFloodServer, type FloodServer } from '../helpers/hostile.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { READER, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const FLOOD = 64 * 2 ** 20;
/** Far below FLOOD: the bound (4 MiB) plus what sockets buffer on loopback. */
const TAKEN_MAX = 16 * 2 ** 20;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

let work: string;
let up: TestUpstream;
let flood: FloodServer;
let img: GeneratedImage;
let next: GeneratedImage;
let n = 0;
const running: RunningAirlock[] = [];

async function airlockFor(url: string, extra: string[] = [], credentials = true): Promise<RunningAirlock> {
  const a = await startAirlock(
    [
      `storage:\n  root: ${path.join(work, `store-${n++}`)}`,
      'log:\n  level: warn',
      'cache:\n  tagTTL: 1s',
      'upstreams:',
      '  docker.io:',
      `    url: ${url}`,
      ...(credentials ? [`    username: ${READER.user}`, `    password: ${READER.password}`] : []),
      '    timeouts:\n      read: 1s\n      connect: 1s',
      '    retries: 0',
      ...extra.map((l) => `    ${l}`),
      'defaultUpstream: docker.io',
    ].join('\n'),
  );
  running.push(a);
  return a;
}

async function get(a: RunningAirlock, p: string): Promise<{ status: number; ms: number; body: { errors?: Array<{ code: string; message: string }> }; digest?: string }> {
  const started = Date.now();
  const r = await request(`${a.url}${p}`, { headers: { accept: ACCEPT }, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const text = await r.body.text();
  return { status: r.statusCode, ms: Date.now() - started, body: r.statusCode >= 400 ? JSON.parse(text) : {}, digest: r.headers['docker-content-digest'] as string | undefined };
}

/** What the operator reads: each failed request's code and cause, from its `request failed` line. */
function failures(a: RunningAirlock): Array<{ code: unknown; err: unknown }> {
  return a.logs.filter((l) => String(l.msg).startsWith('request failed')).map((l) => ({ code: l.code, err: l.err }));
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-bounds-'));
  up = await startTestUpstream();
  img = await generateImage(path.join(work, 'g-img'), { layers: 1, layerSize: 50_000, format: 'oci' });
  next = await generateImage(path.join(work, 'g-next'), { layers: 1, layerSize: 50_000, format: 'oci' });
  await up.push(img, 'library/app', '1');
  flood = await startFloodServer((p) => {
    if (p.startsWith('/token')) return { status: 200, bytes: FLOOD };
    if (p.includes('/tags/list')) return { status: 200, bytes: FLOOD };
    if (p.includes('/manifests/')) return { status: 404, bytes: FLOOD };
    return undefined;
  });
}, 300_000);

afterAll(async () => {
  await flood?.stop();
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
  up.proxy.reset();
  flood.floods.length = 0;
});

describe('bodies from an upstream are bounded', () => {
  it('a token realm that answers without end is cut off; the pull fails with one clear 503', async () => {
    up.proxy.faults.realm = `${flood.url}/token`;
    const a = await airlockFor(up.proxy.url);
    const r = await get(a, '/v2/library/app/manifests/1');
    expect(r.status).toBe(503);
    expect(r.body.errors?.[0]?.code).toBe('UNAVAILABLE');
    expect(failures(a)).toEqual([{ code: 'UPSTREAM_UNAVAILABLE', err: expect.stringMatching(/^upstream docker\.io token service failed: token endpoint http:\/\/127\.0\.0\.1:\d+\/token sent a token larger than 4194304 bytes$/) }]);
    expect(flood.floods.map((f) => f.path.split('?')[0])).toEqual(['/token']);
    expect(flood.floods[0]!.written).toBeLessThan(TAKEN_MAX);
  });

  it('a tags page or an error body without end is cut off: 502 for the tags, the 404 still a 404', async () => {
    const a = await airlockFor(flood.url, [], false);
    const tags = await get(a, '/v2/library/app/tags/list');
    expect(tags.status).toBe(502);
    expect(tags.body.errors?.[0]?.code).toBe('UNAVAILABLE');
    expect(failures(a)).toEqual([{ code: 'UPSTREAM_BAD_RESPONSE', err: 'upstream docker.io sent a tags/list page larger than 4194304 bytes' }]);
    const m = await get(a, '/v2/library/app/manifests/1');
    expect(m.status).toBe(404);
    expect(m.body.errors?.[0]?.code).toBe('MANIFEST_UNKNOWN');
    expect(flood.floods.map((f) => f.path.replace(/\?.*/, ''))).toEqual(['/v2/library/app/tags/list', '/v2/library/app/manifests/1']);
    for (const f of flood.floods) expect(f.written, f.path).toBeLessThan(TAKEN_MAX);
  });
});

describe('a manifest dripped a byte at a time', () => {
  it('ends at the exchange deadline (2x the read timeout), and the stored tag is served', async () => {
    const a = await airlockFor(up.proxy.url);
    const first = await get(a, '/v2/library/app/manifests/1');
    expect(first.status).toBe(200);
    expect(first.digest).toBe(img.manifestDigest);
    // The tag moves upstream, so revalidating it needs a GET; that GET drips, each byte 0.2 s apart.
    await up.push(next, 'library/app', '1');
    await new Promise((r) => setTimeout(r, 1100));
    up.proxy.faults.dripManifest = 200;
    const stale = await get(a, '/v2/library/app/manifests/1');
    expect(stale.status).toBe(200);
    expect(stale.digest).toBe(img.manifestDigest);
    expect(stale.ms).toBeGreaterThan(1500);
    expect(stale.ms).toBeLessThan(6000);
    expect(a.logs.some((l) => l.msg === 'upstream unavailable; serving the cached tag' && /did not finish sending a manifest in time/.test(String(l.err)))).toBe(true);
    // A mirror that has nothing stored answers 504 in the same time, not a hang.
    const cold = await airlockFor(up.proxy.url);
    const fresh = await get(cold, '/v2/library/app/manifests/1');
    expect(fresh.status).toBe(504);
    expect(fresh.body.errors?.[0]?.code).toBe('UNAVAILABLE');
    expect(failures(cold)).toEqual([{ code: 'UPSTREAM_TIMEOUT', err: 'upstream docker.io did not finish sending a manifest in time' }]);
    expect(fresh.ms).toBeLessThan(6000);
  }, 60_000);
});
