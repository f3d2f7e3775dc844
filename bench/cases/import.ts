/**
 * `airlock import` of a bundle (frozen from a filled store) into an empty store against tar
 * plus sha256sum over the same bytes (both sides end with their output on disk).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { entryFor } from '../lib/baseline.js';
import { against } from '../lib/compare.js';
import { MiB, airlockEntry, baselineRef } from '../lib/options.js';
import { airlockCli, sh, timed } from '../lib/shell.js';
import { nextId, workPath } from '../lib/work-dir.js';
import type { KeptStore } from './prefetch.js';

export async function importCase(store: KeptStore, bytes: number): Promise<void> {
  const mb = bytes / 1e6;
  const bundle = workPath('bundle-import.tar');
  await airlockCli(airlockEntry, ['freeze', '--config', store.config, '--out', bundle]);
  await against(`import (${(bytes / MiB).toFixed(0)} MiB bundle into an empty store)`, 'tar + sha256sum', 'MB/s', 'higher', '≥ 0.9', async (who) => {
    const dest = await mkdtemp(workPath(`import-${who}-`));
    try {
      // With --baseline, the baseline's `airlock import` of the same bundle in tar's place.
      if (who === 'airlock' || baselineRef) {
        const cfg = workPath(`import-${nextId()}.yml`);
        await writeFile(cfg, `storage:\n  root: ${dest}\nlog:\n  level: warn\n`);
        return mb / (await timed(() => airlockCli(entryFor(who), ['import', '--config', cfg, bundle])));
      }
      return mb / (await timed(() => sh('bash', ['-c', `set -e; tar -xf "${bundle}" -C "${dest}"; cd "${dest}"; sha256sum -c --quiet SHA256SUMS; sync -f .`])));
    } finally {
      await rm(dest, { recursive: true, force: true });
    }
  });
  await rm(bundle, { force: true });
}
