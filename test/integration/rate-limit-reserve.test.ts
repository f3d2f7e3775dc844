/**
 * The rate-limit reserve with a real upstream (Distribution behind the counting proxy, which adds
 * Docker Hub's ratelimit-limit / ratelimit-remaining headers): once fewer than
 * upstreams.<host>.rateLimitReserve requests are left, a stored tag past cache.tagTTL is served
 * without any request reaching the upstream, a tag not in the store is still fetched, one warn
 * line says so for the window, /metrics shows the remaining count, and once the window (`w=`)
 * has passed, revalidation resumes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock } from '../helpers/airlock.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { READER, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

let work: string;
let up: TestUpstream;
let one: GeneratedImage;
let two: GeneratedImage;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-ratelimit-'));
  up = await startTestUpstream();
  one = await generateImage(path.join(work, 'g-one'), { layers: 1, layerSize: 10_000, format: 'oci' });
  two = await generateImage(path.join(work, 'g-two'), { layers: 1, layerSize: 10_000, format: 'oci' });
  await up.push(one, 'library/app', '1');
  await up.push(two, 'library/app', '2');
});

afterAll(async () => {
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** One sample of a metric for docker.io from /metrics, or undefined when absent. */
async function metric(url: string, name: string): Promise<number | undefined> {
  const text = await (await request(`${url}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{upstream="docker.io"} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('the rate-limit reserve', () => {
  it('serves stored tags without revalidation while under the reserve, still fetches missing tags, and resumes after the window', async () => {
    const window = 3;
    up.proxy.faults.rateLimit = { limit: `100;w=${window}`, remaining: `50;w=${window}` };
    const a = await startAirlock([
      `storage:\n  root: ${path.join(work, 'store')}`,
      'log:\n  level: info',
      'cache:\n  tagTTL: 1s',
      'upstreams:',
      '  docker.io:',
      `    url: ${up.proxy.url}`,
      `    username: ${READER.user}`,
      `    password: ${READER.password}`,
      '    rateLimitReserve: 10',
      '',
    ].join('\n'));
    const get = async (tag: string) => {
      const r = await request(`${a.url}/v2/library/app/manifests/${tag}`, { headers: { accept: one.mediaType } });
      await r.body.dump();
      return { status: r.statusCode, digest: r.headers['docker-content-digest'] };
    };
    const reserveWarnings = () => a.logs.filter((l) => l.level === 'warn').filter((l) => String(l.msg).includes('rate limit nearly spent'));
    try {
      expect(await get('1')).toEqual({ status: 200, digest: one.manifestDigest });
      expect(await metric(a.url, 'airlock_upstream_ratelimit_remaining')).toBe(50);
      expect(await metric(a.url, 'airlock_upstream_ratelimit_limit')).toBe(100);
      expect(await metric(a.url, 'airlock_upstream_ratelimit_reserve')).toBe(10);

      // The next answer says 5 are left: under the reserve of 10.
      up.proxy.faults.rateLimit = { limit: `100;w=${window}`, remaining: `5;w=${window}` };
      await sleep(1100);
      const heads = up.proxy.manifestRequests('HEAD');
      expect(await get('1')).toEqual({ status: 200, digest: one.manifestDigest });
      expect(up.proxy.manifestRequests('HEAD')).toBe(heads + 1);
      expect(reserveWarnings()).toHaveLength(1);
      expect(reserveWarnings()[0]).toMatchObject({ upstream: 'docker.io', remaining: 5, limit: 100, reserve: 10 });

      // Past the TTL: served from the store, and nothing reaches the upstream.
      await sleep(1100);
      const seen = up.proxy.records.length;
      for (let i = 0; i < 3; i++) expect(await get('1')).toEqual({ status: 200, digest: one.manifestDigest });
      expect(up.proxy.records.slice(seen)).toEqual([]);
      expect(await metric(a.url, 'airlock_upstream_ratelimit_remaining')).toBe(5);

      // A tag not in the store is a client's cold pull: the reserve is for it.
      expect(await get('2')).toEqual({ status: 200, digest: two.manifestDigest });
      expect(up.proxy.records.slice(seen).filter((r) => r.method === 'GET' && r.path.endsWith('/manifests/2') && r.status === 200)).toHaveLength(1);
      // One warn line for the window, however many requests met the reserve.
      expect(reserveWarnings()).toHaveLength(1);

      // Once the window has passed, the tag is revalidated again.
      up.proxy.faults.rateLimit = { limit: `100;w=${window}`, remaining: `60;w=${window}` };
      await sleep(window * 1000 + 200);
      expect(await metric(a.url, 'airlock_upstream_ratelimit_remaining')).toBeUndefined();
      const before = up.proxy.manifestRequests('HEAD');
      expect(await get('1')).toEqual({ status: 200, digest: one.manifestDigest });
      expect(up.proxy.manifestRequests('HEAD')).toBe(before + 1);
      expect(await metric(a.url, 'airlock_upstream_ratelimit_remaining')).toBe(60);
      expect(reserveWarnings()).toHaveLength(1);
    } finally {
      await a.stop();
      delete up.proxy.faults.rateLimit;
    }
  });
});
