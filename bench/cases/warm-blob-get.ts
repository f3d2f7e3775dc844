/** One GET of the big layer from a filled mirror, read to the end: serving throughput. */
import { blobThroughput } from '../lib/clients.js';
import { both } from '../lib/compare.js';
import type { Mirror, Who } from '../lib/mirrors.js';
import { MiB, S } from '../lib/options.js';

export async function warmBlobGetCase(warm: Record<Who, Mirror>, layer: { digest: string; size: number }): Promise<void> {
  await both(`warm blob GET, ${S.big / MiB} MiB`, 'MB/s', 'higher', '≥ 1.0', (who) => blobThroughput(warm[who], 'bench/big', layer.digest, layer.size));
}
