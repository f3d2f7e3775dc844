/**
 * storage.maxSize is a ceiling (issue 18, item 2): a burst of pulls of images all served within
 * evictMinAge never takes the store's blob bytes over maxSize, recently served images going
 * least recently served first, pinned ones never; and a fill with no room still reaches its
 * clients, is not stored, says so, and is fetched again next time.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillsSettled, startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { pullToLayout } from '../helpers/skopeo.js';
import { blobFile, exists } from '../helpers/store-files.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const MiB = 2 ** 20;
let work: string;
let up: TestUpstream;
/** A small image to pin (prefetch), five fresh ~2 MiB images, and one 3 MiB single-layer image. */
let pinned: GeneratedImage;
const burst: GeneratedImage[] = [];
let huge: GeneratedImage;
let n = 0;

/** Bytes of every blob data file under the store (what the ceiling is about). */
async function blobBytes(root: string): Promise<number> {
  const base = path.join(root, 'docker/registry/v2/blobs/sha256');
  let total = 0;
  for (const p of await readdir(base).catch(() => [])) {
    for (const h of await readdir(path.join(base, p)).catch(() => [])) total += (await stat(path.join(base, p, h, 'data')).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** Samples the store's blob bytes every 20 ms in the background until stopped; the peak. */
function sampler(root: string): { stop(): Promise<{ peak: number; samples: number }> } {
  let peak = 0;
  let samples = 0;
  let running = true;
  const loop = (async () => {
    // Bounded: a few minutes at most, whatever happens to the test.
    for (let i = 0; running && i < 10_000; i++) {
      peak = Math.max(peak, await blobBytes(root));
      samples++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      peak = Math.max(peak, await blobBytes(root));
      return { peak, samples };
    },
  };
}

async function pull(reg: RunningAirlock, img: GeneratedImage, repo: string): Promise<void> {
  const p = await pullToLayout(`docker://${reg.host}/${repo}:v1`, path.join(work, `pull-${n++}`));
  expect(p.manifestDigest).toBe(img.manifestDigest);
  for (const b of img.blobs) expect(p.blobs).toContain(b.digest);
}

async function metric(reg: RunningAirlock, name: string): Promise<number> {
  const text = await (await request(`${reg.url}/metrics`)).body.text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 'NaN');
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-ceiling-'));
  up = await startTestUpstream();
  pinned = await generateImage(path.join(work, 'g-pinned'), { layers: 2, layerSize: 512 * 1024, format: 'oci' });
  await up.push(pinned, 'ceil/pinned', 'v1');
  for (let i = 0; i < 5; i++) {
    const img = await generateImage(path.join(work, `g${i}`), { layers: 2, layerSize: MiB, format: 'oci' });
    await up.push(img, `ceil/img${i}`, 'v1');
    burst.push(img);
  }
  huge = await generateImage(path.join(work, 'g-huge'), { layers: 1, layerSize: 3 * MiB, format: 'oci' });
  await up.push(huge, 'ceil/huge', 'v1');
}, 180_000);

afterAll(async () => {
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('storage.maxSize is a ceiling', () => {
  it('keeps a burst of fresh pulls under maxSize at every sample, evicting recently served images and never the pinned one', async () => {
    const root = path.join(work, 'burst');
    const maxSize = 7 * MiB;
    // evictMinAge is the default (1m): every image of the burst is "recent".
    const reg = await startAirlock(`storage:\n  root: ${root}\n  maxSize: 7MiB\nlog:\n  level: warn\n${mirrorUpstreams(up)}\n`);
    try {
      expect((await reg.prefetch(['ceil/pinned:v1'])).results[0]!.outcome).toBe('ok');
      const s = sampler(root);
      let stopped: { peak: number; samples: number } | undefined;
      try {
        for (let i = 0; i < 5; i++) await pull(reg, burst[i]!, `ceil/img${i}`);
        await fillsSettled(reg);
      } finally {
        stopped = await s.stop();
      }
      expect(stopped.samples).toBeGreaterThan(10);
      expect(stopped.peak).toBeLessThanOrEqual(maxSize);
      // The pinned image is whole; the last pull is stored (room was made for it, not refused).
      for (const b of pinned.blobs) expect(await exists(blobFile(root, b.digest))).toBe(true);
      for (const b of burst[4]!.blobs) expect(await exists(blobFile(root, b.digest))).toBe(true);
      // The least recently served went first.
      for (const b of burst[0]!.blobs) expect(await exists(blobFile(root, b.digest))).toBe(false);
      // Every image still pulls with the right digests (evicted ones fetched again).
      const again = sampler(root);
      try {
        for (let i = 0; i < 5; i++) await pull(reg, burst[i]!, `ceil/img${i}`);
        await fillsSettled(reg);
      } finally {
        expect((await again.stop()).peak).toBeLessThanOrEqual(maxSize);
      }
      for (const b of pinned.blobs) expect(await exists(blobFile(root, b.digest))).toBe(true);
    } finally {
      await reg.stop();
    }
  });

  it('serves a fill it has no room for without storing it, says so, and fetches it again next time', async () => {
    const root = path.join(work, 'full');
    const maxSize = Math.round(2.5 * MiB);
    const reg = await startAirlock(`storage:\n  root: ${root}\n  maxSize: ${maxSize}\nlog:\n  level: warn\n${mirrorUpstreams(up)}\n`);
    try {
      // 2 MiB pinned: what is left cannot hold a 1 MiB layer, and nothing else is evictable.
      expect((await reg.prefetch(['ceil/img0:v1'])).results[0]!.outcome).toBe('ok');
      const s = sampler(root);
      let peak: number;
      try {
        up.proxy.reset();
        // The second time of each, the first fill has settled (not joined: fetched again).
        for (const [img, repo] of [[burst[1]!, 'ceil/img1'], [huge, 'ceil/huge'], [burst[1]!, 'ceil/img1'], [huge, 'ceil/huge']] as const) {
          // huge is larger than the ceiling itself.
          await pull(reg, img, repo);
          await fillsSettled(reg);
        }
      } finally {
        peak = (await s.stop()).peak;
      }
      expect(peak).toBeLessThanOrEqual(maxSize);
      const layers = [...burst[1]!.blobs.filter((b) => b.size >= MiB), ...huge.blobs.filter((b) => b.size >= MiB)];
      expect(layers).toHaveLength(3);
      for (const b of layers) {
        expect(await exists(blobFile(root, b.digest))).toBe(false);
        // Not stored, so the second pull fetched it again.
        expect(up.proxy.blobGets(b.digest)).toBe(2);
      }
      // The pinned image survived the pressure.
      for (const b of burst[0]!.blobs) expect(await exists(blobFile(root, b.digest))).toBe(true);
      const warned = reg.logs.filter((l) => l.level === 'warn' && typeof l.msg === 'string' && /not stored/.test(l.msg));
      for (const b of layers) expect(warned.some((l) => l.digest === b.digest)).toBe(true);
      expect(await metric(reg, 'airlock_fills_not_stored_total')).toBe(6);
      // Nothing was evicted for room that could not be made anyway.
      expect(await metric(reg, 'airlock_evictions_total')).toBe(0);
      for (const b of huge.blobs.filter((x) => x.size < MiB)) expect(await exists(blobFile(root, b.digest))).toBe(true);
    } finally {
      await reg.stop();
    }
    // The staged copies that served the clients are gone with the shutdown at the latest.
    expect(await readdir(path.join(root, '.airlock/tmp', String(process.pid))).catch(() => [])).toEqual([]);
  });
});
