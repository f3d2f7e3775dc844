/** Cold pull (skopeo) of the many-small-layers image through an empty mirror: per-blob overhead. */
import type { TestUpstream } from '../../test/helpers/upstream.js';
import { timedPull } from '../lib/clients.js';
import { both } from '../lib/compare.js';
import { coldMirror } from '../lib/mirrors.js';
import { S } from '../lib/options.js';

export async function coldPullSmallCase(up: TestUpstream): Promise<void> {
  await both(`cold pull, ${S.small} small layers (skopeo)`, 's', 'lower', '≤ 1.0', (who) => coldMirror(who, up, (m) => timedPull(m.host, 'bench/small:v1')));
}
