/**
 * The cold pull where the hop to the upstream is a link of LINK bytes/s shared by every
 * connection across it: a site's uplink, slower than its disks and cores. This is where a
 * mirror's own upstream traffic shows (Distribution's proxy fetches a blob for the client and
 * again for its store, over the same link); on loopback it is nearly free.
 */
import type { GeneratedImage } from '../../test/helpers/images.js';
import { READER, type TestUpstream } from '../../test/helpers/upstream.js';
import { timedPull } from '../lib/clients.js';
import { peerName } from '../lib/baseline.js';
import { both } from '../lib/compare.js';
import { layerBytes } from '../lib/layer-bytes.js';
import { coldMirror, type Who } from '../lib/mirrors.js';
import { MiB, S, quick, selected } from '../lib/options.js';
import { extras } from '../lib/report.js';
import { stats } from '../lib/stats.js';

/** The uplink, bytes per second (800 Mbit/s; 400 for the small sizes). */
const LINK = quick ? 50e6 : 100e6;

export async function coldPullUplinkCase(up: TestUpstream, big: GeneratedImage): Promise<void> {
  const creds = `${READER.user}:${READER.password}`;
  const linkName = `cold pull, ${S.big / MiB} MiB image, over a ${(LINK * 8) / 1e6} Mbit/s uplink (skopeo)`;
  if (!selected(linkName)) return;
  const directLink: number[] = [];
  for (let i = 0; i < S.reps; i++) {
    up.proxy.reset();
    up.proxy.faults.link = LINK;
    directLink.push(await timedPull(up.proxy.host, 'bench/big:v1', creds));
  }
  up.proxy.reset();
  const linkBytes: Record<Who, number[]> = { airlock: [], distribution: [] };
  const linkA = await both(linkName, 's', 'lower', '≤ 0.75; ≤ 1.1× direct', (who) =>
    coldMirror(who, up, async (m) => {
      up.proxy.reset();
      up.proxy.faults.link = LINK;
      try {
        return await timedPull(m.host, 'bench/big:v1');
      } finally {
        linkBytes[who].push(up.proxy.blobBytes() / layerBytes(big));
        up.proxy.reset();
      }
    }),
  );
  const directLinkMedian = stats(directLink).median;
  extras.push({ case: `direct pull over the ${(LINK * 8) / 1e6} Mbit/s uplink`, value: `${directLinkMedian.toFixed(2)} s median (${((layerBytes(big) / directLinkMedian) / 1e6).toFixed(0)} MB/s)` });
  if (linkA) {
    extras.push({ case: 'cold pull over the uplink: airlock ÷ direct pull', value: (linkA.airlock.median / directLinkMedian).toFixed(2), target: '≤ 1.1' });
    extras.push({ case: `cold pull over the uplink: ${peerName('Distribution proxy')} ÷ direct pull`, value: (linkA.distribution.median / directLinkMedian).toFixed(2) });
    extras.push({ case: 'cold pull over the uplink: upstream blob bytes ÷ image size', value: `airlock ${stats(linkBytes.airlock).median.toFixed(2)}, ${peerName('Distribution')} ${stats(linkBytes.distribution).median.toFixed(2)}`, target: '≤ 1.02' });
  }
}
