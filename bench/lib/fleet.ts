/** Replicas of one mirror on one bucket of radosgw, for the fleet case. */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { startDistribution, type Distribution } from '../../test/helpers/distribution.js';
import { freePort } from '../../test/helpers/ports.js';
import type { startRadosgw } from '../../test/helpers/radosgw.js';
import { READER, type TestUpstream } from '../../test/helpers/upstream.js';
import { startAirlockProcess } from './airlock-process.js';
import { baselineEntry } from './baseline.js';
import type { Mirror, Who } from './mirrors.js';
import { airlockEntry, baselineRef } from './options.js';
import { workPath } from './work-dir.js';

export type Radosgw = Awaited<ReturnType<typeof startRadosgw>>;

/** Replicas of one mirror on one bucket, pulled from side by side. */
export interface Fleet { hosts: string[]; pids: Array<number | undefined>; stop(): Promise<void>; logs(): string }

/** Stops every started replica, even when some failed to stop. */
async function stopAll(stops: Array<() => Promise<void>>): Promise<void> {
  const failed = (await Promise.allSettled(stops.map((s) => s()))).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

type FleetStarter = (count: number, gw: Radosgw, bucket: string, up: TestUpstream, redirect: boolean) => Promise<Fleet>;

/** Each side's fleet: airlock's, and Distribution's or (with `--baseline`) the baseline build's under its own prefix. */
export const fleetStarters: Record<Who, FleetStarter> = {
  airlock: (...a) => startAirlockFleet(airlockEntry, 'airlock', ...a),
  distribution: (...a) => (baselineRef ? startAirlockFleet(baselineEntry(), 'airlock-baseline', ...a) : startDistributionFleet(...a)),
};

/** `count` airlock serve processes of build `entry` on `bucket` under `prefix`, each with its fleet port, leases of 5 s. */
async function startAirlockFleet(entry: string, prefix: string, count: number, gw: Radosgw, bucket: string, up: TestUpstream, redirect: boolean): Promise<Fleet> {
  const replicas: Mirror[] = [];
  // Their spool directories.
  const dir = await mkdtemp(workPath('fleet-airlock-'));
  const stop = async () => {
    try {
      await stopAll(replicas.map((r) => () => r.stop()));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const lines = async () => {
    const fleetPort = await freePort();
    return [
      '  driver: s3',
      `  s3: { endpoint: "${gw.endpoint}", region: ${gw.region}, bucket: ${bucket}, prefix: ${prefix}, accessKey: "${gw.accessKey}", secretKey: "${gw.secretKey}" }`,
      `  redirect: ${redirect}`,
      `fleet: { listen: "127.0.0.1:${fleetPort}", advertise: "http://127.0.0.1:${fleetPort}", leaseTTL: 5s, secret: "bench-fleet-secret-0123456789" }`,
    ];
  };
  try {
    for (let i = 0; i < count; i++) replicas.push(await startAirlockProcess(entry, await mkdtemp(path.join(dir, `spool-${i}-`)), up, lines));
  } catch (e) {
    await stop();
    throw e;
  }
  // Their log lines are on stderr already (startAirlockProcess forwards them).
  return { hosts: replicas.map((r) => r.host), pids: replicas.map((r) => r.pid), stop, logs: () => '' };
}

/** `count` Distribution registries in proxy mode, s3 driver on `bucket` under /distribution. */
async function startDistributionFleet(count: number, gw: Radosgw, bucket: string, up: TestUpstream, redirect: boolean): Promise<Fleet> {
  const replicas: Distribution[] = [];
  const stop = () => stopAll(replicas.map((d) => () => d.stop()));
  try {
    for (let i = 0; i < count; i++) {
      replicas.push(await startDistribution({
        root: workPath(), // unused with s3
        s3: { endpoint: gw.endpoint, region: gw.region, bucket, rootdirectory: '/distribution', accessKey: gw.accessKey, secretKey: gw.secretKey },
        proxy: { remoteUrl: up.proxy.url, username: READER.user, password: READER.password },
        // Distribution redirects blob GETs to its s3 driver's URLs unless told not to.
        redirectDisabled: !redirect,
      }));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { hosts: replicas.map((d) => d.host), pids: replicas.map((d) => d.pid), stop, logs: () => replicas.map((d) => `distribution ${d.host}:\n${d.logs().slice(-4000)}`).join('\n') };
}
