/**
 * Cold pull of the big image through an empty mirror, against a direct pull from the upstream
 * taken beside it, and the same pull through two TCP relays in the mirror's place (the floor
 * under any mirror's cold pull on these cores). Also: the mirror's CPU seconds and the upstream
 * blob bytes it fetched.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { GeneratedImage } from '../../test/helpers/images.js';
import { READER, type TestUpstream } from '../../test/helpers/upstream.js';
import { timedPull } from '../lib/clients.js';
import { peerName } from '../lib/baseline.js';
import { both } from '../lib/compare.js';
import { layerBytes } from '../lib/layer-bytes.js';
import { coldMirror, type Who } from '../lib/mirrors.js';
import { MiB, S } from '../lib/options.js';
import { cpuSeconds } from '../lib/proc.js';
import { extras } from '../lib/report.js';
import { startRelay } from '../lib/relay.js';
import { settle } from '../lib/shell.js';
import { stats } from '../lib/stats.js';
import { workPath } from '../lib/work-dir.js';

export async function coldPullCase(up: TestUpstream, big: GeneratedImage): Promise<void> {
  const creds = `${READER.user}:${READER.password}`;
  // Direct pulls are taken throughout, beside the pulls they are compared with, and one first,
  // alone (see bench/PERFORMANCE.md#direct-pulls-beside-the-cold-pulls).
  const direct: number[] = [];
  const directPull = async () => {
    direct.push(await timedPull(up.proxy.host, 'bench/big:v1', creds));
  };
  await settle();
  await directPull();

  const coldBytes: Record<Who, number[]> = { airlock: [], distribution: [] };
  const coldCpu: Record<Who, number[]> = { airlock: [], distribution: [] };
  const coldSys: Record<Who, number[]> = { airlock: [], distribution: [] };
  const coldA = await both(`cold pull, ${S.big / MiB} MiB image (skopeo)`, 's', 'lower', '≤ 0.75; ≤ 1.1× direct', (who) =>
    coldMirror(who, up, async (m) => {
      await directPull();
      up.proxy.reset();
      const cpu0 = await cpuSeconds(m.pid);
      const t = await timedPull(m.host, 'bench/big:v1');
      const cpu1 = await cpuSeconds(m.pid);
      coldCpu[who].push(cpu1.user + cpu1.system - cpu0.user - cpu0.system);
      coldSys[who].push(cpu1.system - cpu0.system);
      coldBytes[who].push(up.proxy.blobBytes() / layerBytes(big));
      return t;
    }),
  );
  if (!coldA) return;
  // The same pull through a bare TCP relay where the mirror sits (what one more process on
  // the path costs on these cores), and through one that also hashes and stores the bytes
  // (what any mirror must do at least, before it parses HTTP); each round beside a direct pull.
  const relayed: Record<'bare' | 'storing', { secs: number[]; cpu: number[] }> = { bare: { secs: [], cpu: [] }, storing: { secs: [], cpu: [] } };
  const relayStore = await mkdtemp(workPath('relay-'));
  const relays = { bare: await startRelay(up.proxy.host), storing: await startRelay(up.proxy.host, relayStore) };
  try {
    for (let i = 0; i < S.reps; i++) {
      for (const kind of ['bare', 'storing'] as const) {
        const relay = relays[kind];
        const cpu0 = await cpuSeconds(relay.pid);
        relayed[kind].secs.push(await timedPull(relay.host, 'bench/big:v1', creds));
        const cpu1 = await cpuSeconds(relay.pid);
        relayed[kind].cpu.push(cpu1.user + cpu1.system - cpu0.user - cpu0.system);
      }
      await directPull();
    }
  } finally {
    await relays.bare.stop();
    await relays.storing.stop();
    await rm(relayStore, { recursive: true, force: true });
  }
  const directMedian = stats(direct).median;
  extras.push({ case: `direct pull from the upstream (${S.big / MiB} MiB, through the same proxy hop)`, value: `${directMedian.toFixed(2)} s median of ${direct.length}, taken between the other pulls` });
  extras.push({ case: 'cold pull: airlock ÷ direct pull', value: (coldA.airlock.median / directMedian).toFixed(2), target: '≤ 1.1' });
  extras.push({ case: `cold pull: ${peerName('Distribution proxy')} ÷ direct pull`, value: (coldA.distribution.median / directMedian).toFixed(2) });
  const relayLine = (r: { secs: number[]; cpu: number[] }) => `${(stats(r.secs).median / directMedian).toFixed(2)} (${stats(r.secs).median.toFixed(2)} s; the relay used ${stats(r.cpu).median.toFixed(2)} CPU seconds)`;
  extras.push({ case: 'pull through a bare TCP relay in the mirror\'s place (no HTTP, no hashing, no store) ÷ direct pull', value: relayLine(relayed.bare) });
  extras.push({ case: 'pull through a TCP relay that also hashes and stores every byte (no HTTP) ÷ direct pull', value: relayLine(relayed.storing) });
  // What bounds a cold pull on a small machine: the mirror's own CPU, on cores that the
  // client, the upstream and the proxy hop already keep busy during a direct pull.
  extras.push({ case: 'cold pull: CPU seconds used by the mirror process (median)', value: `airlock ${stats(coldCpu.airlock).median.toFixed(2)} (system ${stats(coldSys.airlock).median.toFixed(2)}), ${peerName('Distribution')} ${stats(coldCpu.distribution).median.toFixed(2)} (system ${stats(coldSys.distribution).median.toFixed(2)})` });
  extras.push({ case: 'cold pull: upstream blob bytes ÷ image size', value: `airlock ${stats(coldBytes.airlock).median.toFixed(2)}, ${peerName('Distribution')} ${stats(coldBytes.distribution).median.toFixed(2)}`, target: '≤ 1.02' });
}
