import { mkdtemp } from 'node:fs/promises';
import type { TestUpstream } from '../../test/helpers/upstream.js';
import { timedPull } from './clients.js';
import { starters, type Mirror, type Who } from './mirrors.js';
import { workPath } from './work-dir.js';

/** One mirror each, filled by one pull of each of `refs`, for the warm cases to share. */
export async function startWarmMirrors(up: TestUpstream, refs: string[]): Promise<Record<Who, Mirror>> {
  const warm: Partial<Record<Who, Mirror>> = {};
  for (const who of ['airlock', 'distribution'] as const) {
    const root = await mkdtemp(workPath(`warm-${who}-`));
    const m = await starters[who](root, up);
    warm[who] = m;
    for (const ref of refs) await timedPull(m.host, ref);
  }
  return warm as Record<Who, Mirror>;
}
