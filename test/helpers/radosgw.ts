/**
 * Starts a real S3 object store for tests: Debian's Ceph as a single-node cluster (one ceph-mon,
 * one bluestore ceph-osd on a sparse file, radosgw with the beast frontend), all on 127.0.0.1,
 * with cephx off, in a fresh temp dir that stop() removes. A cold start takes about 5 s, and the
 * three daemons hold about 150 MB (RSS) after light use.
 *
 * The daemons run in the foreground as children of the test process. They are killed when the
 * process exits (an 'exit' handler), and, where setpriv is there, also when it dies without one
 * (PR_SET_PDEATHSIG), so a crashed test run does not leave a cluster behind.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, ListBucketsCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { freePort } from './ports.js';

const run = promisify(execFile);

/** Where ceph-mon, ceph-osd, radosgw, ceph, monmaptool and radosgw-admin are. */
export const CEPH_BIN_DIR = process.env.AIRLOCK_CEPH_BIN_DIR ?? '/usr/bin';
const SETPRIV = '/usr/bin/setpriv';

export const RADOSGW_ACCESS_KEY = 'AIRLOCKTESTACCESSKEY';
export const RADOSGW_SECRET_KEY = 'airlock-test-secret-key-0123456789abcdef';
/** The default zonegroup takes any region in a signature, but CreateBucket only without a
 * LocationConstraint, which the SDK leaves out for us-east-1 alone. */
export const RADOSGW_REGION = 'us-east-1';

export interface RadosgwOptions {
  /** Parent of the cluster's temp dir (default: the OS temp dir). */
  dir?: string;
}

export interface Radosgw {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  region: string;
  accessKey: string;
  secretKey: string;
  /** The cluster's temp dir (config, data, logs); removed by stop(). */
  dir: string;
  stop(): Promise<void>;
  createBucket(name: string): Promise<void>;
  /** The tail of each daemon's log. */
  logs(): string;
}

/**
 * An S3 client for the gateway. Ceph 16's radosgw answers 411 to the SDK's default streaming
 * uploads (aws-chunked with a checksum trailer), so checksums are sent only where required.
 */
export function radosgwClient(rgw: Radosgw, extra: S3ClientConfig = {}): S3Client {
  return new S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKey, secretAccessKey: rgw.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...extra,
  });
}

interface Daemon {
  name: string;
  child: ChildProcess;
  out: string;
  exited: Promise<void>;
}

/** Clusters not stopped yet, killed and removed if the process exits first. */
const live = new Set<{ dir: string; daemons: Daemon[] }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) {
      for (const d of c.daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
      try {
        rmSync(c.dir, { recursive: true, force: true });
      } catch {
        /* best effort at exit */
      }
    }
  });
}

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = [v2:127.0.0.1:${monPort}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
ms mon client mode = crc
auth cluster required = none
auth service required = none
auth client required = none
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
log to stderr = false
err to stderr = true
mon data = ${dir}/$name
osd data = ${dir}/$name
keyring = ${dir}/keyring
crash dir = ${dir}/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 1
paxos propose interval = 0.1
paxos min wait = 0.01

[osd]
osd objectstore = bluestore
# Outside the OSD's data dir (mkfs links it in as "block"); created sparse by mkfs.
bluestore block path = ${dir}/$name.block
bluestore block create = true
bluestore block size = 10737418240
bluestore fsck on mkfs = false
# osd memory target cannot go below 896 MiB; a fixed small cache keeps the OSD under 100 MB.
osd memory target = 939524096
bluestore cache autotune = false
bluestore cache size = 67108864
osd op num shards = 2
osd op num threads per shard = 2

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
rgw thread pool size = 32
rgw enable lc threads = false
# Its first requests wait for the OSD to come up; the objecter resends them on its tick.
objecter tick interval = 1
`;
}

export async function startRadosgw(opts: RadosgwOptions = {}): Promise<Radosgw> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      // Another program took a port between the check and the bind: try other ones.
      if (attempt >= 3 || !/address already in use/i.test(String(e))) throw e;
    }
  }
}

async function startOnce(opts: RadosgwOptions): Promise<Radosgw> {
  const parent = opts.dir ?? os.tmpdir();
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(path.join(parent, 'airlock-rgw-'));
  const conf = path.join(dir, 'ceph.conf');
  const cluster = { dir, daemons: [] as Daemon[] };
  installExitHook();
  live.add(cluster);
  const bin = (name: string) => path.join(CEPH_BIN_DIR, name);
  const cli = async (name: string, args: string[], timeout = 60_000) => {
    try {
      return (await run(bin(name), ['--conf', conf, ...args], { timeout, maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`${name} ${args.join(' ')} failed: ${err.message}\n${err.stderr ?? ''}`, { cause: e });
    }
  };
  const daemon = (name: string, file: string, args: string[]) => {
    const argv = [...args, '--conf', conf, '-f'];
    const child = existsSync(SETPRIV)
      ? spawn(SETPRIV, ['--pdeathsig', 'SIGKILL', '--', bin(file), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(bin(file), argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const d: Daemon = { name, child, out: '', exited: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
    const keep = (b: Buffer) => {
      d.out = (d.out + b.toString()).slice(-16 * 1024);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    cluster.daemons.push(d);
    return d;
  };
  const logs = () => {
    const parts: string[] = [];
    for (const d of cluster.daemons) {
      let file = '';
      try {
        file = readFileSync(path.join(dir, 'log', `${d.name}.log`), 'utf8').split('\n').slice(-40).join('\n');
      } catch {
        /* no log yet */
      }
      const state = d.child.exitCode !== null || d.child.signalCode !== null ? `exited ${d.child.exitCode ?? d.child.signalCode}` : 'running';
      parts.push(`--- ${d.name} (${state}) output:\n${d.out}\n--- ${d.name} log tail:\n${file}`);
    }
    return parts.join('\n');
  };
  const stopDaemons = async (ds: Daemon[]) => {
    const alive = ds.filter((d) => d.child.exitCode === null && d.child.signalCode === null);
    for (const d of alive) d.child.kill('SIGTERM');
    const t = setTimeout(() => {
      for (const d of alive) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    }, 3000);
    await Promise.all(alive.map((d) => d.exited));
    clearTimeout(t);
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // In reverse order of need: the gateway unwatches its objects on the OSD as it goes, and an
    // OSD whose monitor is gone waits 5 s to say goodbye.
    for (const name of ['client.rgw', 'osd.0', 'mon.a']) await stopDaemons(cluster.daemons.filter((d) => d.name === name));
    live.delete(cluster);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const fsid = randomUUID();
    const monPort = await freePort();
    const rgwPort = await freePort();
    for (const sub of ['run', 'log', 'crash', 'rgw', 'osd.0']) await mkdir(path.join(dir, sub));
    await writeFile(conf, cephConf(dir, fsid, monPort, rgwPort));

    const monmap = path.join(dir, 'monmap');
    await run(bin('monmaptool'), ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, monmap]);
    await cli('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', monmap]);
    daemon('mon.a', 'ceph-mon', ['-i', 'a']);

    const osdUuid = randomUUID();
    const id = (await cli('ceph', ['--connect-timeout', '30', 'osd', 'new', osdUuid])).trim();
    if (id !== '0') throw new Error(`ceph osd new gave id ${id}`);
    await cli('ceph-osd', ['-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
    daemon('osd.0', 'ceph-osd', ['-i', '0']);
    // radosgw creates its pools and waits for them to be active.
    daemon('client.rgw', 'radosgw', ['-n', 'client.rgw']);

    const endpoint = `http://127.0.0.1:${rgwPort}`;
    const until = Date.now() + 120_000;
    const check = () => {
      for (const d of cluster.daemons) {
        if (d.child.exitCode !== null || d.child.signalCode !== null) throw new Error(`${d.name} exited early`);
      }
      if (Date.now() > until) throw new Error('radosgw did not start within 120 s');
    };
    // Up when the gateway answers an anonymous ListBuckets.
    for (;;) {
      check();
      try {
        const r = await request(`${endpoint}/`);
        await r.body.dump();
        if (r.statusCode === 200) break;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await cli('radosgw-admin', ['user', 'create', '--uid=airlock', '--display-name=airlock', `--access-key=${RADOSGW_ACCESS_KEY}`, `--secret-key=${RADOSGW_SECRET_KEY}`]);

    const rgw: Radosgw = {
      endpoint,
      region: RADOSGW_REGION,
      accessKey: RADOSGW_ACCESS_KEY,
      secretKey: RADOSGW_SECRET_KEY,
      dir,
      stop,
      logs,
      createBucket: async (name) => {
        const s3 = radosgwClient(rgw);
        try {
          await s3.send(new CreateBucketCommand({ Bucket: name }));
        } finally {
          s3.destroy();
        }
      },
    };
    // Ready when a signed call goes through.
    const s3 = radosgwClient(rgw, { maxAttempts: 1 });
    try {
      for (;;) {
        check();
        try {
          await s3.send(new ListBucketsCommand({}));
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      s3.destroy();
    }
    return rgw;
  } catch (e) {
    const text = logs();
    await stop().catch(() => undefined);
    throw new Error(`radosgw cluster did not start: ${e instanceof Error ? e.message : String(e)}\n${text}`, { cause: e });
  }
}
