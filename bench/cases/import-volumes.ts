/**
 * `airlock import` of a bundle cut into volumes (freeze --volume-size) against the same bundle
 * as one file, both by this airlock (with --baseline, the baseline's single-file import), both
 * into an empty store: what reading a set of discs in order costs.
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { entryFor } from '../lib/baseline.js';
import { against } from '../lib/compare.js';
import { MiB, S, airlockEntry, baselineRef, quick } from '../lib/options.js';
import { airlockCli, settle, timed } from '../lib/shell.js';
import { nextId, workPath } from '../lib/work-dir.js';
import type { KeptStore } from './prefetch.js';

export async function importVolumesCase(store: KeptStore, bytes: number): Promise<void> {
  const mb = bytes / 1e6;
  const single = workPath('bundle-single.tar');
  await airlockCli(airlockEntry, ['freeze', '--config', store.config, '--out', single]);
  // Four volumes, as a bundle spread over four discs.
  const volumeSize = Math.max(64 * 1024, Math.ceil((await stat(single)).size / 4));
  const volumes = workPath('bundle-vol.tar');
  await airlockCli(airlockEntry, ['freeze', '--config', store.config, '--out', volumes, '--volume-size', String(volumeSize)]);
  await against(`import from 4 volumes (${(bytes / MiB).toFixed(0)} MiB)`, 'the same bundle as one file', 'MB/s', 'higher', '≥ 0.9', async (who) => {
    const dest = await mkdtemp(workPath(`import-vol-${who}-`));
    try {
      const cfg = workPath(`import-vol-${nextId()}.yml`);
      await writeFile(cfg, `storage:\n  root: ${dest}\nlog:\n  level: warn\n`);
      const file = who === 'airlock' ? `${volumes}.000` : single;
      const entry = who === 'airlock' || !baselineRef ? airlockEntry : entryFor(who);
      // The previous round's store is still being written back: each round starts from a clean disk.
      await settle();
      return mb / (await timed(() => airlockCli(entry, ['import', '--config', cfg, file])));
    } finally {
      await rm(dest, { recursive: true, force: true });
    }
    // Each round is a few seconds and this disk lands at one of two speeds on either side: five
    // rounds a side, so the median is not decided by one of them (bench/PERFORMANCE.md).
  }, quick || S.reps < 3 ? S.reps : 5);
  await rm(single, { force: true });
  for (let i = 0; i < 10; i++) await rm(`${volumes}.${String(i).padStart(3, '0')}`, { force: true });
  await rm(`${volumes}-volumes.sha256`, { force: true });
}
