/**
 * `airlock prefetch` of an image list against `skopeo sync` of the same list from the same
 * upstream, each into an empty destination. The store of airlock's first run is kept for the
 * freeze and import cases.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { READER, type TestUpstream } from '../../test/helpers/upstream.js';
import { entryFor } from '../lib/baseline.js';
import { against } from '../lib/compare.js';
import { MiB, baselineRef, only } from '../lib/options.js';
import { airlockCli, sh, timed } from '../lib/shell.js';
import { nextId, workPath } from '../lib/work-dir.js';

/** A filled store and an airlock configuration naming it. */
export interface KeptStore { root: string; config: string }

export async function prefetchCase(up: TestUpstream, images: Array<{ repo: string; tag: string }>, bytes: number): Promise<KeptStore | undefined> {
  const concurrency = 4;
  const creds = { user: READER.user, password: READER.password };
  const cfgFor = async (root: string) => {
    const f = workPath(`prefetch-${nextId()}.yml`);
    const list = images.map((i) => `    - ${i.repo}:${i.tag}`).join('\n');
    await writeFile(f, [`storage:\n  root: ${root}`, 'log:\n  level: warn', 'upstreams:', '  docker.io:', `    url: ${up.proxy.url}`, `    username: ${creds.user}`, `    password: ${creds.password}`, 'prefetch:', `  concurrency: ${concurrency}`, '  images:', list].join('\n') + '\n');
    return f;
  };
  const syncYaml = workPath('sync.yml');
  const byRepo = new Map<string, string[]>();
  for (const i of images) byRepo.set(i.repo, [...(byRepo.get(i.repo) ?? []), i.tag]);
  await writeFile(syncYaml, [`${up.proxy.host}:`, '  tls-verify: false', '  credentials:', `    username: ${creds.user}`, `    password: ${creds.password}`, '  images:', ...[...byRepo].map(([r, t]) => `    ${r}: [${t.join(', ')}]`)].join('\n') + '\n');
  let kept = '';
  await against(`prefetch ${images.length} images (${(bytes / MiB).toFixed(0)} MiB), cold`, 'skopeo sync', 's', 'lower', '≤ 1.0', async (who) => {
    const dest = await mkdtemp(workPath(`prefetch-${who}-`));
    try {
      // With --baseline, the baseline's `airlock prefetch` in skopeo's place; the kept store is always airlock's.
      if (who === 'airlock' || baselineRef) {
        const cfg = await cfgFor(dest);
        const t = await timed(() => airlockCli(entryFor(who), ['prefetch', '--config', cfg]));
        if (who === 'airlock' && !kept) {
          kept = await mkdtemp(workPath('frozen-src-'));
          await rm(kept, { recursive: true });
          await sh('mv', [dest, kept]);
        }
        return t;
      }
      return await timed(() => sh('skopeo', ['sync', '--all', '--preserve-digests', '--retry-times=0', '--src', 'yaml', '--dest', 'dir', '--scoped', syncYaml, dest], { maxBuffer: 64 << 20, timeout: 1_800_000 }));
    } finally {
      await rm(dest, { recursive: true, force: true });
    }
  });
  if (!kept && only) {
    // This case was not selected, but a later offline case may be (--case volumes): it still
    // needs the filled store, unmeasured.
    kept = await mkdtemp(workPath('frozen-src-'));
    await airlockCli(entryFor('airlock'), ['prefetch', '--config', await cfgFor(kept)]);
  }
  if (!kept) return undefined;
  return { root: kept, config: await cfgFor(kept) };
}
