/**
 * Plain registry: airlock and Distribution (not in proxy mode) serve the same directory, the
 * store airlock wrote while pulling the images through: blob GET throughput, manifest GET load.
 * With `--baseline`, the baseline build serves it in Distribution's place.
 */
import { mkdtemp } from 'node:fs/promises';
import type { TestUpstream } from '../../test/helpers/upstream.js';
import { blobThroughput, load, timedPull } from '../lib/clients.js';
import { both } from '../lib/compare.js';
import { starters } from '../lib/mirrors.js';
import { MiB, S } from '../lib/options.js';
import { workPath } from '../lib/work-dir.js';

export async function plainRegistryCases(up: TestUpstream, layer: { digest: string; size: number }, indexDigest: string): Promise<void> {
  const plainRoot = await mkdtemp(workPath('plain-'));
  {
    const filler = await starters.airlock(plainRoot, up);
    await timedPull(filler.host, 'bench/multi:v1');
    await timedPull(filler.host, 'bench/big:v1');
    await filler.stop();
  }
  const plain = { airlock: await starters.airlock(plainRoot), distribution: await starters.distribution(plainRoot) };
  try {
    // One untimed GET each first: a long-running server is what operators run.
    for (const m of Object.values(plain)) await blobThroughput(m, 'bench/big', layer.digest, layer.size);
    await both(`plain registry: blob GET, ${S.big / MiB} MiB`, 'MB/s', 'higher', '≥ 1.0', (who) => blobThroughput(plain[who], 'bench/big', layer.digest, layer.size));
    await both('plain registry: manifest GET by tag, 32 connections', 'req/s', 'higher', '≥ 1.0', (who) => load(plain[who], '/v2/bench/multi/manifests/v1', 'GET'));
    await both('plain registry: manifest GET by digest, 32 connections', 'req/s', 'higher', '≥ 1.0', (who) => load(plain[who], `/v2/bench/multi/manifests/${indexDigest}`, 'GET'));
  } finally {
    await plain.airlock.stop();
    await plain.distribution.stop();
  }
}
