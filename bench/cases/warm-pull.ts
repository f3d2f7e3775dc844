/** Warm pulls (skopeo) of the big image and of the many-small-layers image from filled mirrors. */
import { timedPull } from '../lib/clients.js';
import { both } from '../lib/compare.js';
import type { Mirror, Who } from '../lib/mirrors.js';
import { MiB, S } from '../lib/options.js';

export async function warmPullCases(warm: Record<Who, Mirror>): Promise<void> {
  await both(`warm pull, ${S.big / MiB} MiB image (skopeo)`, 's', 'lower', '≤ 1.0', (who) => timedPull(warm[who].host, 'bench/big:v1'));
  await both(`warm pull, ${S.small} small layers (skopeo)`, 's', 'lower', '≤ 1.0', (who) => timedPull(warm[who].host, 'bench/small:v1'));
}
