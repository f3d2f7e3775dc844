/**
 * Push throughput of one big blob to a plain registry (a fresh store each time): POST then PUT
 * with the whole body ("monolithic", the form both accept), and in 8 MiB PATCHes.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'undici';
import { both } from '../lib/compare.js';
import { starters, type Mirror } from '../lib/mirrors.js';
import { MiB } from '../lib/options.js';
import { workPath } from '../lib/work-dir.js';

const CHUNK = 8 * MiB;

/** `file` holds the blob's bytes. */
export async function pushCases(file: string, digest: string, size: number): Promise<void> {
  for (const chunked of [false, true]) {
    await both(`push ${(size / MiB).toFixed(0)} MiB blob, ${chunked ? '8 MiB chunks' : 'monolithic'} (plain registry)`, 'MB/s', 'higher', '≥ 1.0', async (who) => {
      const root = await mkdtemp(workPath(`push-${who}-`));
      const m = await starters[who](root);
      try {
        return await pushOnce(m, file, digest, size, chunked);
      } finally {
        await m.stop();
        await rm(root, { recursive: true, force: true });
      }
    });
  }
}

/** One upload of the blob; MB/s. */
async function pushOnce(m: Mirror, file: string, digest: string, size: number, chunked: boolean): Promise<number> {
  const t0 = process.hrtime.bigint();
  const post = await request(`${m.url}/v2/bench/pushed/blobs/uploads/`, { method: 'POST' });
  await post.body.dump();
  let loc = new URL(String(post.headers.location), m.url).toString();
  if (chunked) {
    for (let off = 0; off < size; off += CHUNK) {
      const end = Math.min(size, off + CHUNK) - 1;
      const r = await request(loc, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${end}`, 'content-length': String(end - off + 1) },
        body: createReadStream(file, { start: off, end, highWaterMark: MiB }),
      });
      await r.body.dump();
      if (r.statusCode !== 202) throw new Error(`${m.name}: PATCH answered ${r.statusCode}`);
      loc = new URL(String(r.headers.location), m.url).toString();
    }
    const put = await request(`${loc}${loc.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
    await put.body.dump();
    if (put.statusCode !== 201) throw new Error(`${m.name}: PUT answered ${put.statusCode}`);
  } else {
    const put = await request(`${loc}${loc.includes('?') ? '&' : '?'}digest=${digest}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: createReadStream(file, { highWaterMark: MiB }),
    });
    await put.body.dump();
    if (put.statusCode !== 201) throw new Error(`${m.name}: PUT answered ${put.statusCode}`);
  }
  return size / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9);
}
