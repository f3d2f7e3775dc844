/**
 * Image archives: `airlock save` of a stored image to a docker-archive against
 * `skopeo copy docker://… docker-archive:` from Distribution serving the same store, and
 * `airlock load` of that archive into an empty store against `skopeo copy docker-archive: docker://…`
 * into a Distribution with an empty store (which then runs `sync`, as airlock fsyncs).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { startDistribution } from '../../test/helpers/distribution.js';
import { entryFor } from '../lib/baseline.js';
import { against } from '../lib/compare.js';
import { MiB, airlockEntry, baselineRef } from '../lib/options.js';
import { airlockCli, sh, timed } from '../lib/shell.js';
import { nextId, workPath } from '../lib/work-dir.js';
import type { KeptStore } from './prefetch.js';

const SKOPEO = ['copy', '--quiet', '--insecure-policy', '--retry-times=0'];

export async function archiveCases(store: KeptStore, image: string, bytes: number): Promise<void> {
  const mb = bytes / 1e6;
  const served = await startDistribution({ root: store.root });
  const archive = workPath('archive-skopeo.tar');
  try {
    await against(`save ${image} (${(bytes / MiB).toFixed(0)} MiB) to a docker-archive`, 'skopeo copy from Distribution', 'MB/s', 'higher', '≥ 0.9', async (who) => {
      const out = workPath(`save-${who}-${nextId()}.tar`);
      try {
        if (who === 'airlock' || baselineRef) return mb / (await timed(() => airlockCli(entryFor(who), ['save', '--config', store.config, '--out', out, image])));
        return mb / (await timed(() => sh('skopeo', [...SKOPEO, '--src-tls-verify=false', `docker://${served.host}/${image}`, `docker-archive:${out}:${image}`], { timeout: 1_800_000 })));
      } finally {
        await rm(out, { force: true });
      }
    });
    await sh('skopeo', [...SKOPEO, '--src-tls-verify=false', `docker://${served.host}/${image}`, `docker-archive:${archive}:${image}`], { timeout: 1_800_000 });
  } finally {
    await served.stop();
  }
  await against(`load a docker-archive of ${image} (${(bytes / MiB).toFixed(0)} MiB) into an empty store`, 'skopeo copy to Distribution', 'MB/s', 'higher', '≥ 0.9', async (who) => {
    const dest = await mkdtemp(workPath(`load-${who}-`));
    try {
      if (who === 'airlock' || baselineRef) {
        const cfg = workPath(`load-${nextId()}.yml`);
        await writeFile(cfg, `storage:\n  root: ${dest}\nlog:\n  level: warn\n`);
        return mb / (await timed(() => airlockCli(who === 'airlock' ? airlockEntry : entryFor(who), ['load', '--config', cfg, archive])));
      }
      const reg = await startDistribution({ root: dest });
      try {
        return mb / (await timed(async () => {
          await sh('skopeo', [...SKOPEO, '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${reg.host}/${image}`], { timeout: 1_800_000 });
          await sh('sync', ['-f', dest]);
        }));
      } finally {
        await reg.stop();
      }
    } finally {
      await rm(dest, { recursive: true, force: true });
    }
  });
  await rm(archive, { force: true });
}
