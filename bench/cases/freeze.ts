/**
 * `airlock freeze` of a filled store to a bundle against tar plus sha256sum over the same bytes
 * (both sides end with their output on disk: airlock fsyncs, the peer runs sync).
 */
import { rm } from 'node:fs/promises';
import { entryFor } from '../lib/baseline.js';
import { against } from '../lib/compare.js';
import { MiB, baselineRef } from '../lib/options.js';
import { airlockCli, sh, timed } from '../lib/shell.js';
import { workPath } from '../lib/work-dir.js';
import type { KeptStore } from './prefetch.js';

export async function freezeCase(store: KeptStore, bytes: number): Promise<void> {
  const mb = bytes / 1e6;
  await against(`freeze (${(bytes / MiB).toFixed(0)} MiB store to a bundle)`, 'tar + sha256sum', 'MB/s', 'higher', '≥ 0.9', async (who) => {
    const out = workPath(`bundle-${who}.tar`);
    try {
      // With --baseline, the baseline's `airlock freeze` in tar's place.
      if (who === 'airlock' || baselineRef) return mb / (await timed(() => airlockCli(entryFor(who), ['freeze', '--config', store.config, '--out', out])));
      return mb / (await timed(() => sh('bash', ['-c', `set -e; cd "${store.root}"; find docker -type f -print0 | xargs -0 sha256sum > SHA256SUMS; tar -cf "${out}" docker SHA256SUMS; sync "${out}"`])));
    } finally {
      await rm(out, { force: true });
    }
  });
}
