/**
 * Fleet: FLEET_REPLICAS replicas on one bucket of a real object store (Ceph's radosgw, started
 * here and only when the case is selected), FLEET_CLIENTS skopeo pulls per replica at once. airlock:
 * `serve` processes sharing fill leases (one upstream fetch per blob for the fleet); Distribution:
 * proxy-mode registries with its s3 driver on the same radosgw. Each repetition takes a fresh
 * bucket (airlock under prefix airlock, Distribution under /distribution): a cold round, the upstream
 * blob bytes of that round, then the same pulls again (warm). With `redirect`, both send clients
 * to the bucket for stored blobs instead of streaming them through the replica. With `--baseline`,
 * the baseline build's replicas (prefix airlock-baseline) take Distribution's place.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { radosgwClient, startRadosgw } from '../../test/helpers/radosgw.js';
import type { TestUpstream } from '../../test/helpers/upstream.js';
import { timedPull } from '../lib/clients.js';
import { peerName } from '../lib/baseline.js';
import { startBlobRelay } from '../lib/blob-relay.js';
import { skipBaselineFailure } from '../lib/compare.js';
import { fleetStarters, type Radosgw } from '../lib/fleet.js';
import type { Who } from '../lib/mirrors.js';
import { MiB, S, baselineRef, selected } from '../lib/options.js';
import { cpuSeconds, machineCpuSeconds } from '../lib/proc.js';
import { extras, record } from '../lib/report.js';
import { settle, timed } from '../lib/shell.js';
import { stats } from '../lib/stats.js';
import { workPath } from '../lib/work-dir.js';

const FLEET_REPLICAS = 3;
const FLEET_CLIENTS = 2;

export async function fleetCase(up: TestUpstream, ref: string, imageBytes: number, redirect = false): Promise<void> {
  const label = `${FLEET_REPLICAS} replicas × ${FLEET_CLIENTS} clients, ${(imageBytes / MiB).toFixed(0)} MiB image${redirect ? ', blobs redirected to the bucket' : ''}`;
  const coldName = `fleet cold pull, ${label}`;
  const warmName = `fleet warm pull, ${label}`;
  if (!selected(coldName, warmName)) return;
  console.error('bench: fleet: starting radosgw…');
  const gwDir = await mkdtemp(workPath('radosgw-'));
  let gw: Radosgw | undefined;
  try {
    gw = await startRadosgw({ dir: gwDir });
    // radosgw creates its bucket data pool on the first object written: not in anyone's cold round.
    await gw.createBucket('bench-fleet-warmup');
    const s3 = radosgwClient(gw);
    try {
      await s3.send(new PutObjectCommand({ Bucket: 'bench-fleet-warmup', Key: 'warmup', Body: randomBytes(MiB) }));
    } finally {
      s3.destroy();
    }
    await settle();
    const cold: Record<Who, number[]> = { airlock: [], distribution: [] };
    const warm: Record<Who, number[]> = { airlock: [], distribution: [] };
    const bytes: Record<Who, number[]> = { airlock: [], distribution: [] };
    // Where a warm round's time goes: CPU seconds of the replicas, and of the whole machine.
    const warmCpu: Record<Who, Array<{ replicas: number; machine: number }>> = { airlock: [], distribution: [] };
    // The same pulls once more, right after: the replicas' second warm round (what a fresh process's first costs extra).
    const again: Record<Who, Array<{ time: number; replicas: number }>> = { airlock: [], distribution: [] };
    // The same warm round through bare Node relays in the replicas' place (bench/lib/blob-relay.ts).
    const floor = { time: [] as number[], cpu: [] as number[] };
    const rgw = gw;
    for (let i = 0; i < S.reps; i++) {
      const bucket = `bench-fleet-${i}`;
      await gw.createBucket(bucket);
      for (const who of i % 2 ? (['airlock', 'distribution'] as const) : (['distribution', 'airlock'] as const)) {
        // A baseline that cannot run fleets (a ref from before them) skips the case, not the run.
        const baselineFailed = (e: unknown) => {
          if (who === 'airlock' || !baselineRef) throw e;
          skipBaselineFailure(e, coldName, warmName);
        };
        const fleet = await fleetStarters[who](FLEET_REPLICAS, gw, bucket, up, redirect).catch(baselineFailed);
        if (!fleet) return;
        try {
          const round = () => timed(() => Promise.all(fleet.hosts.flatMap((h) => Array.from({ length: FLEET_CLIENTS }, () => timedPull(h, ref)))));
          up.proxy.reset();
          cold[who].push(await round());
          bytes[who].push(up.proxy.blobBytes() / imageBytes);
          const replicaCpu = async () => (await Promise.all(fleet.pids.map(cpuSeconds))).reduce((n, c) => n + c.user + c.system, 0);
          const [r0, m0] = [await replicaCpu(), await machineCpuSeconds()];
          warm[who].push(await round());
          warmCpu[who].push({ replicas: (await replicaCpu()) - r0, machine: (await machineCpuSeconds()) - m0 });
          const a0 = await replicaCpu();
          const time = await round();
          again[who].push({ time, replicas: (await replicaCpu()) - a0 });
          if (who === 'airlock' && !redirect) {
            const relays = await Promise.all(fleet.hosts.map((h) => startBlobRelay(h, rgw, bucket, 'airlock')));
            try {
              const relayCpu = async () => (await Promise.all(relays.map((r) => cpuSeconds(r.pid)))).reduce((n, c) => n + c.user + c.system, 0);
              const c0 = await relayCpu();
              floor.time.push(await timed(() => Promise.all(relays.flatMap((r) => Array.from({ length: FLEET_CLIENTS }, () => timedPull(r.host, ref))))));
              floor.cpu.push((await relayCpu()) - c0);
            } finally {
              await Promise.all(relays.map((r) => r.stop()));
            }
          }
        } catch (e) {
          await new Promise((r) => setTimeout(r, 500)); // the replicas' last log lines
          baselineFailed(new Error(`${who === 'airlock' ? who : peerName(who)} fleet (${fleet.hosts.join(', ')}): ${(e as Error).message}\n${fleet.logs()}`, { cause: e }));
          return;
        } finally {
          await fleet.stop();
        }
      }
    }
    record(coldName, undefined, 's', 'lower', '≤ 1.0', cold.airlock, cold.distribution);
    record(warmName, undefined, 's', 'lower', '≤ 1.0', warm.airlock, warm.distribution);
    const cpuMedian = (who: Who, k: 'replicas' | 'machine') => stats(warmCpu[who].map((c) => c[k])).median.toFixed(2);
    extras.push({
      case: `fleet warm round (${label}): CPU seconds of the replicas / of the whole machine (median)`,
      value: `airlock ${cpuMedian('airlock', 'replicas')} / ${cpuMedian('airlock', 'machine')}, ${peerName('Distribution')} ${cpuMedian('distribution', 'replicas')} / ${cpuMedian('distribution', 'machine')}`,
    });
    const againMedian = (who: Who, k: 'time' | 'replicas') => stats(again[who].map((c) => c[k])).median;
    extras.push({
      case: `fleet second warm round (${label}), the same replicas right after the first: s (÷ ${peerName('Distribution')}) and CPU seconds of the replicas (median)`,
      value: `airlock ${againMedian('airlock', 'time').toFixed(2)} s (${(againMedian('airlock', 'time') / againMedian('distribution', 'time')).toFixed(2)}×), ${againMedian('airlock', 'replicas').toFixed(2)} CPU s; ${peerName('Distribution')} ${againMedian('distribution', 'time').toFixed(2)} s, ${againMedian('distribution', 'replicas').toFixed(2)} CPU s`,
    });
    if (floor.time.length) {
      const t = stats(floor.time).median;
      extras.push({
        case: `fleet warm round (${label}) through bare Node relays in the replicas' place (undici from the bucket piped to the client, nothing else, airlock's Node flags; manifests forwarded to the replicas): s and CPU seconds of the relays (median)`,
        value: `${t.toFixed(2)} s (${(t / stats(warm.distribution).median).toFixed(2)}× ${peerName('Distribution')}), ${stats(floor.cpu).median.toFixed(2)} CPU s`,
      });
    }
    if (!redirect) extras.push({ case: `fleet upstream bytes ÷ image (cold round, ${FLEET_REPLICAS} replicas × ${FLEET_CLIENTS} clients)`, value: `airlock ${stats(bytes.airlock).median.toFixed(2)}, ${peerName('Distribution')} ${stats(bytes.distribution).median.toFixed(2)}`, target: '≤ 1.05' });
  } finally {
    await gw?.stop();
    await rm(gwDir, { recursive: true, force: true });
  }
}
