/**
 * Push throughput of one big blob to a plain registry (a fresh store each time): POST then PUT
 * with the whole body ("monolithic", the form both accept), and in 8 MiB PATCHes.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'undici';
import { peerName } from '../lib/baseline.js';
import { both } from '../lib/compare.js';
import { starters, type Mirror, type Who } from '../lib/mirrors.js';
import { MiB } from '../lib/options.js';
import { cpuSeconds } from '../lib/proc.js';
import { extras } from '../lib/report.js';
import { stats } from '../lib/stats.js';
import { workPath } from '../lib/work-dir.js';

const CHUNK = 8 * MiB;

/** `file` holds the blob's bytes. */
export async function pushCases(file: string, digest: string, size: number): Promise<void> {
  for (const chunked of [false, true]) {
    const name = `push ${(size / MiB).toFixed(0)} MiB blob, ${chunked ? '8 MiB chunks' : 'monolithic'} (plain registry)`;
    // CPU seconds per round: the server's (system time holds the copy into the page cache), and
    // this process's (the pushing client), to show which side limits the rate.
    const cpu: Record<Who, { user: number[]; system: number[]; client: number[] }> = { airlock: { user: [], system: [], client: [] }, distribution: { user: [], system: [], client: [] } };
    const done = await both(name, 'MB/s', 'higher', '≥ 1.0', async (who) => {
      const root = await mkdtemp(workPath(`push-${who}-`));
      const m = await starters[who](root);
      try {
        const s0 = await cpuSeconds(m.pid);
        const c0 = process.cpuUsage();
        const rate = await pushOnce(m, file, digest, size, chunked);
        const c = process.cpuUsage(c0);
        const s1 = await cpuSeconds(m.pid);
        cpu[who].user.push(s1.user - s0.user);
        cpu[who].system.push(s1.system - s0.system);
        cpu[who].client.push((c.user + c.system) / 1e6);
        return rate;
      } finally {
        await m.stop();
        await rm(root, { recursive: true, force: true });
      }
    });
    if (!done) continue;
    const line = (who: Who) => `${stats(cpu[who].user).median.toFixed(2)} + ${stats(cpu[who].system).median.toFixed(2)} / ${stats(cpu[who].client).median.toFixed(2)}`;
    extras.push({ case: `${name}: CPU seconds of the server (user + system) / of the pushing client (the bench process) (median)`, value: `airlock ${line('airlock')}, ${peerName('Distribution')} ${line('distribution')}` });
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
