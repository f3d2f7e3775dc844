/** S.concurrency concurrent cold pulls of one image: wall time, upstream bytes, peak RSS. */
import type { GeneratedImage } from '../../test/helpers/images.js';
import type { TestUpstream } from '../../test/helpers/upstream.js';
import { timedPull } from '../lib/clients.js';
import { peerName } from '../lib/baseline.js';
import { both } from '../lib/compare.js';
import { layerBytes } from '../lib/layer-bytes.js';
import { coldMirror, type Who } from '../lib/mirrors.js';
import { MiB, S } from '../lib/options.js';
import { peakRssMiB } from '../lib/proc.js';
import { extras } from '../lib/report.js';
import { stats } from '../lib/stats.js';

export async function concurrentColdPullsCase(up: TestUpstream, conc: GeneratedImage): Promise<void> {
  const concBytes: Record<Who, number[]> = { airlock: [], distribution: [] };
  const rss: Record<Who, number[]> = { airlock: [], distribution: [] };
  const compared = await both(`${S.concurrency} concurrent cold pulls, ${S.concurrentImage / MiB} MiB image`, 's', 'lower', '≤ 0.8', (who) =>
    coldMirror(who, up, async (m) => {
      up.proxy.reset();
      const t0 = process.hrtime.bigint();
      await Promise.all(Array.from({ length: S.concurrency }, () => timedPull(m.host, 'bench/conc:v1')));
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      concBytes[who].push(up.proxy.blobBytes() / layerBytes(conc));
      rss[who].push(await peakRssMiB(m.pid));
      return secs;
    }),
  );
  if (!compared) return;
  extras.push({ case: `${S.concurrency} concurrent cold pulls: upstream blob bytes ÷ image size`, value: `airlock ${stats(concBytes.airlock).median.toFixed(2)}, ${peerName('Distribution')} ${stats(concBytes.distribution).median.toFixed(2)}`, target: '≤ 1.05' });
  extras.push({ case: `peak RSS during the concurrent case (MiB)`, value: `airlock ${stats(rss.airlock).max.toFixed(0)}, ${peerName('Distribution')} ${stats(rss.distribution).max.toFixed(0)}`, target: 'airlock ≤ 100' });
}
