/**
 * The S3 driver and the fleet, on a real object store: Ceph's radosgw as a single-node cluster
 * (test/helpers/radosgw.ts), Distribution with token auth as the upstream behind the counting
 * proxy, skopeo and plain HTTP as clients, airlock in-process and as three `serve` replicas.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateMultipartUploadCommand, GetObjectCommand, HeadBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fillsSettled, startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { runAirlock, spawnServe, waitHealthy, type ServeProcess } from '../helpers/cli.js';
import { startDistribution } from '../helpers/distribution.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { radosgwClient, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { pullToLayout, skopeoCopy } from '../helpers/skopeo.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

let work: string;
let gw: Radosgw;
let s3: S3Client;
let up: TestUpstream;
const img: Record<string, GeneratedImage> = {};
let n = 0;

function storageBlock(bucket: string, prefix: string, extra: string[] = []): string {
  return [
    'storage:',
    `  root: ${path.join(work, `spool-${n++}`)}`,
    '  driver: s3',
    ...extra,
    '  s3:',
    `    endpoint: ${gw.endpoint}`,
    `    region: ${gw.region}`,
    `    bucket: ${bucket}`,
    `    prefix: ${prefix}`,
    `    accessKey: ${gw.accessKey}`,
    `    secretKey: ${gw.secretKey}`,
    '    partSize: 5MiB',
  ].join('\n');
}

function upstreamBlock(): string {
  return `${mirrorUpstreams(up)}\ndefaultUpstream: docker.io`;
}

async function mirror(bucket: string, prefix: string, extra: string[] = [], more = ''): Promise<RunningAirlock> {
  return startAirlock([storageBlock(bucket, prefix, extra), 'log:\n  level: warn', upstreamBlock(), more].join('\n'));
}

async function keys(bucket: string, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let token: string | undefined;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) out.set(o.Key!, o.Size ?? 0);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}

async function object(bucket: string, key: string): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

async function pendingUploads(bucket: string): Promise<string[]> {
  const r = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (r.Uploads ?? []).map((u) => u.Key!);
}

/** Every blob object under the prefix hashes to its key. */
async function assertBucketVerified(bucket: string, prefix: string): Promise<number> {
  let count = 0;
  for (const [key] of await keys(bucket, `${prefix}/docker/registry/v2/blobs/`)) {
    if (!key.endsWith('/data')) continue;
    const hex = key.split('/').slice(-2, -1)[0]!;
    expect(createHash('sha256').update(await object(bucket, key)).digest('hex')).toBe(hex);
    count++;
  }
  return count;
}

function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

let buckets = 0;
async function newBucket(): Promise<string> {
  const b = `airlock-test-${buckets++}`;
  await gw.createBucket(b);
  return b;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-s3-'));
  [gw, up] = await Promise.all([startRadosgw(), startTestUpstream()]);
  s3 = radosgwClient(gw);
  img.multi = await generateImage(path.join(work, 'g-multi'), { layers: 3, layerSize: 700_000, format: 'oci' });
  img.big = await generateImage(path.join(work, 'g-big'), { layers: 2, layerSize: 12_000_000, format: 'docker' });
  await up.push(img.multi, 'library/multi', '1.0');
  await up.push(img.big, 'library/big', 'v1');
}, 240_000);

afterAll(async () => {
  s3?.destroy();
  await Promise.all([up?.stop(), gw?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

afterEach(() => up.proxy.reset());

const imageBytes = (i: GeneratedImage) => i.blobs.reduce((s, b) => s + b.size, 0);

describe('the S3 driver', () => {
  it('stores a cold pull in the bucket in the standard layout; a second airlock on the bucket pulls it with zero upstream blob bytes', async () => {
    const bucket = await newBucket();
    const a = await mirror(bucket, 'site');
    try {
      for (const ref of ['library/multi:1.0', 'library/big:v1']) await pullToLayout(`docker://${a.host}/${ref}`, path.join(work, `pull-${n++}`));
      expect(up.proxy.blobBytes()).toBe(imageBytes(img.multi!) + imageBytes(img.big!));
    } finally {
      await a.stop();
    }
    const all = await keys(bucket, 'site/');
    const v2 = 'site/docker/registry/v2';
    for (const b of [...img.multi!.blobs, ...img.big!.blobs]) expect(all.get(`${v2}/blobs/sha256/${b.digest.slice(7, 9)}/${b.digest.slice(7)}/data`)).toBe(b.size);
    expect((await object(bucket, `${v2}/repositories/library/big/_manifests/tags/v1/current/link`)).toString()).toBe(img.big!.manifestDigest);
    expect((await object(bucket, `${v2}/repositories/library/multi/_layers/sha256/${img.multi!.blobs[1]!.digest.slice(7)}/link`)).toString()).toBe(img.multi!.blobs[1]!.digest);
    // No lease, spool or unfinished multipart upload is left behind.
    expect([...all.keys()].filter((k) => !k.startsWith(`${v2}/`) && k !== 'site/.airlock/access.json')).toEqual([]);
    expect(await pendingUploads(bucket)).toEqual([]);
    expect(await assertBucketVerified(bucket, 'site')).toBe(img.multi!.blobs.length + img.big!.blobs.length + 2);

    up.proxy.reset();
    const b = await mirror(bucket, 'site');
    try {
      const again = await pullToLayout(`docker://${b.host}/library/big:v1`, path.join(work, `pull-${n++}`));
      expect(again.manifestDigest).toBe(img.big!.manifestDigest);
      expect(up.proxy.blobBytes()).toBe(0);
    } finally {
      await b.stop();
    }
  }, 120_000);

  it('a corrupt upstream blob leaves no object and no unfinished upload in the bucket', async () => {
    const bucket = await newBucket();
    const bad = img.big!.blobs.find((x) => x.size > 10_000_000)!;
    up.proxy.faults.corruptBlob = bad.digest;
    const a = await mirror(bucket, 'p', [], 'cache:\n  maxResumes: 0');
    try {
      const r = await request(`${a.url}/v2/library/big/blobs/${bad.digest}`);
      expect(r.statusCode).toBe(200);
      let failed = false;
      try {
        for await (const _ of r.body) void _;
      } catch {
        failed = true;
      }
      expect(failed).toBe(true);
      await new Promise((res) => setTimeout(res, 500));
      expect([...(await keys(bucket, 'p/docker/registry/v2/blobs/')).keys()]).toEqual([]);
      expect(await pendingUploads(bucket)).toEqual([]);
    } finally {
      await a.stop();
    }
  }, 60_000);

  it('pushes monolithic and chunked uploads (appends of under and over the 5 MiB part minimum) and serves them back', async () => {
    const bucket = await newBucket();
    const a = await mirror(bucket, 'push', [], 'push:\n  repositories: ["team/**"]');
    try {
      await skopeoCopy(img.multi!.source, `docker://${a.host}/team/multi:1`, {});
      const blob = Buffer.alloc(7 * 2 ** 20 + 123, 7);
      for (let i = 0; i < blob.length; i += 4096) blob[i] = i & 0xff;
      const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
      const start = await request(`${a.url}/v2/team/chunks/blobs/uploads/`, { method: 'POST' });
      await start.body.dump();
      expect(start.statusCode).toBe(202);
      let loc = String(start.headers.location);
      // 1 MiB (under the part minimum: copied into the new object), then 6 MiB (old object
      // copied server-side as a part), then the rest.
      for (const [from, to] of [[0, 1 << 20], [1 << 20, 7 << 20], [7 << 20, blob.length]] as const) {
        const r = await request(new URL(loc, a.url), { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${to - 1}` }, body: blob.subarray(from, to) });
        await r.body.dump();
        expect(r.statusCode).toBe(202);
        loc = String(r.headers.location);
      }
      const put = await request(new URL(`${loc}${loc.includes('?') ? '&' : '?'}digest=${digest}`, a.url), { method: 'PUT' });
      await put.body.dump();
      expect(put.statusCode).toBe(201);
      const got = await request(`${a.url}/v2/team/chunks/blobs/${digest}`);
      expect(createHash('sha256').update(Buffer.from(await got.body.arrayBuffer())).digest('hex')).toBe(digest.slice(7));
      const pulled = await pullToLayout(`docker://${a.host}/team/multi:1`, path.join(work, `pull-${n++}`));
      expect(pulled.manifestDigest).toBe(img.multi!.manifestDigest);
      expect(await assertBucketVerified(bucket, 'push')).toBe(img.multi!.blobs.length + 2);
      expect([...(await keys(bucket, 'push/docker/registry/v2/repositories/team/chunks/_uploads/')).keys()]).toEqual([]);
    } finally {
      await a.stop();
    }
  }, 60_000);

  it('storage.redirect answers stored blob GETs with a 307 to a presigned URL that serves the bytes', async () => {
    const bucket = await newBucket();
    const a = await mirror(bucket, 'r', ['  redirect: true']);
    try {
      await pullToLayout(`docker://${a.host}/library/multi:1.0`, path.join(work, `pull-${n++}`));
      // The pull has its last byte before the commit to the bucket: until then the fill serves it.
      await fillsSettled(a);
      const b = img.multi!.blobs[0]!;
      const r = await request(`${a.url}/v2/library/multi/blobs/${b.digest}`);
      await r.body.dump();
      expect(r.statusCode).toBe(307);
      const loc = String(r.headers.location);
      expect(loc.startsWith(gw.endpoint)).toBe(true);
      const direct = await request(loc);
      expect(createHash('sha256').update(Buffer.from(await direct.body.arrayBuffer())).digest('hex')).toBe(b.digest.slice(7));
      // And a real client follows it.
      const again = await pullToLayout(`docker://${a.host}/library/multi:1.0`, path.join(work, `pull-${n++}`));
      expect(again.manifestDigest).toBe(img.multi!.manifestDigest);
    } finally {
      await a.stop();
    }
  }, 60_000);

  it("Distribution's own s3 driver serves every image airlock cached in the bucket", async () => {
    const bucket = await newBucket();
    const a = await mirror(bucket, 'shared');
    try {
      for (const ref of ['library/multi:1.0', 'library/big:v1']) await pullToLayout(`docker://${a.host}/${ref}`, path.join(work, `pull-${n++}`));
    } finally {
      await a.stop();
    }
    const dist = await startDistribution({ root: work, s3: { endpoint: gw.endpoint, region: gw.region, bucket, rootdirectory: '/shared', accessKey: gw.accessKey, secretKey: gw.secretKey } });
    try {
      for (const [ref, i] of [['library/multi:1.0', img.multi!], ['library/big:v1', img.big!]] as const) {
        const got = await pullToLayout(`docker://${dist.host}/${ref}`, path.join(work, `pull-${n++}`));
        expect(got.manifestDigest).toBe(i.manifestDigest);
        for (const b of i.blobs) expect(got.blobs).toContain(b.digest);
      }
    } finally {
      await dist.stop();
    }
  }, 90_000);

  it('freeze, import, verify and gc work against the bucket', async () => {
    const bucket = await newBucket();
    const cfgFor = async (prefix: string, extra = '') => {
      const f = path.join(work, `cfg-${n++}.yml`);
      await writeFile(f, [storageBlock(bucket, prefix), 'log:\n  level: warn', upstreamBlock(), 'prefetch:\n  images:\n    - multi:1.0\n    - big:v1', extra].join('\n'));
      return f;
    };
    const online = await cfgFor('online');
    const pre = await runAirlock(['prefetch', '--config', online], 120_000);
    expect(pre.code, pre.stderr).toBe(0);
    const bundle = path.join(work, `bundle-${n++}.tar`);
    const fr = await runAirlock(['freeze', '--config', online, '--out', bundle], 120_000);
    expect(fr.code, fr.stderr).toBe(0);
    const offline = await cfgFor('offline');
    const imp = await runAirlock(['import', '--config', offline, bundle], 120_000);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout).toContain(`s3://${bucket}/offline`);
    const v = await runAirlock(['verify', '--config', offline], 120_000);
    expect(v.code, v.stderr + v.stdout).toBe(0);
    expect(await assertBucketVerified(bucket, 'offline')).toBe(img.multi!.blobs.length + img.big!.blobs.length + 2);
    const du = await runAirlock(['du', '--config', offline], 60_000);
    expect(du.code, du.stderr).toBe(0);
    expect(du.stdout).toContain('library/big');

    // A damaged object is found by verify.
    const victim = img.multi!.blobs[0]!;
    const key = `offline/docker/registry/v2/blobs/sha256/${victim.digest.slice(7, 9)}/${victim.digest.slice(7)}/data`;
    const good = await object(bucket, key);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.concat([good.subarray(0, 10), Buffer.from('x'), good.subarray(11)]) }));
    const bad = await runAirlock(['verify', '--config', offline], 120_000);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain(victim.digest);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: good }));

    // gc removes what nothing references (an orphan blob), keeps everything else.
    const orphan = Buffer.from('orphan blob');
    const ohex = createHash('sha256').update(orphan).digest('hex');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `offline/docker/registry/v2/blobs/sha256/${ohex.slice(0, 2)}/${ohex}/data`, Body: orphan }));
    const gc = await runAirlock(['gc', '--config', offline, '--grace', '0s'], 120_000);
    expect(gc.code, gc.stderr).toBe(0);
    const left = await keys(bucket, 'offline/docker/registry/v2/blobs/');
    expect([...left.keys()].some((k) => k.includes(ohex))).toBe(false);
    expect(await assertBucketVerified(bucket, 'offline')).toBe(img.multi!.blobs.length + img.big!.blobs.length + 2);

    // The offline store serves as a plain registry from the bucket.
    const off = await startAirlock([storageBlock(bucket, 'offline'), 'log:\n  level: warn'].join('\n'));
    try {
      const got = await pullToLayout(`docker://${off.host}/library/big:v1`, path.join(work, `pull-${n++}`));
      expect(got.manifestDigest).toBe(img.big!.manifestDigest);
    } finally {
      await off.stop();
    }
  }, 300_000);
});

describe('a bucket that is not there', () => {
  it('refuses to start with one line naming the bucket, exit 1, and creates nothing', async () => {
    const cfg = path.join(work, `cfg-${n++}.yml`);
    await writeFile(cfg, [storageBlock('no-such-bucket', 'x'), 'log:\n  level: warn'].join('\n'));
    for (const cmd of [['serve'], ['verify']]) {
      const r = await runAirlock([...cmd, '--config', cfg], 30_000);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^airlock: storage\.s3: bucket no-such-bucket at http:\/\/127\.0\.0\.1:\d+ is not usable: does not exist \(HTTP 404\)$/)]);
    }
    const head = await s3.send(new HeadBucketCommand({ Bucket: 'no-such-bucket' })).then(() => 200, (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode);
    expect(head).toBe(404);
  }, 60_000);
});

describe('gc on a bucket shared with running fills', () => {
  it('aborts a dead multipart upload into a blob key, keeps one whose lease is renewed, and leaves Distribution-style _uploads alone', async () => {
    const bucket = await newBucket();
    const cfg = path.join(work, `cfg-${n++}.yml`);
    await writeFile(cfg, [storageBlock(bucket, 'g'), 'log:\n  level: warn'].join('\n'));
    const hex = (c: string) => c.repeat(64);
    const blobKey = (h: string) => `g/docker/registry/v2/blobs/sha256/${h.slice(0, 2)}/${h}/data`;
    const start = async (Key: string) => (await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }))).UploadId!;
    await start(blobKey(hex('a'))); // a killed replica's fill: no lease
    await start(blobKey(hex('b'))); // a running fill: its lease is live
    await start('g/docker/registry/v2/repositories/x/_uploads/1234/data'); // a push of Distribution's
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `g/.airlock/fleet/leases/sha256-${hex('b')}`, Body: JSON.stringify({ replica: 'r', url: 'http://127.0.0.1:1', expires: Date.now() + 60_000 }) }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `g/.airlock/fleet/leases/sha256-${hex('c')}`, Body: JSON.stringify({ replica: 'r', url: 'http://127.0.0.1:1', expires: Date.now() - 1000 }) }));
    const gc = await runAirlock(['gc', '--config', cfg, '--grace', '0s'], 60_000);
    expect(gc.code, gc.stderr).toBe(0);
    expect((await pendingUploads(bucket)).sort()).toEqual([blobKey(hex('b')), 'g/docker/registry/v2/repositories/x/_uploads/1234/data']);
    expect([...(await keys(bucket, 'g/.airlock/fleet/leases/')).keys()]).toEqual([`g/.airlock/fleet/leases/sha256-${hex('b')}`]);
  }, 60_000);
});

describe('three replicas on one bucket', () => {
  interface Replica { url: string; host: string; fleet: string; proc: ServeProcess; cfg: string }
  const replicas: Replica[] = [];
  /** fleet.secret is required: the replicas share it. */
  const FLEET_SECRET = 'fleet-secret-of-the-test-replicas';

  async function startReplicas(bucket: string, count: number, extra = ''): Promise<void> {
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const fleetPort = await freePort();
      const cfg = path.join(work, `replica-${n++}.yml`);
      await writeFile(cfg, [
        `listen: 127.0.0.1:${port}`,
        storageBlock(bucket, 'fleet'),
        'log:\n  level: warn',
        upstreamBlock(),
        'fleet:',
        `  listen: 127.0.0.1:${fleetPort}`,
        `  advertise: http://127.0.0.1:${fleetPort}`,
        '  leaseTTL: 3s',
        `  secret: ${FLEET_SECRET}`,
        extra,
      ].join('\n'));
      const proc = spawnServe(cfg);
      replicas.push({ url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, fleet: `http://127.0.0.1:${fleetPort}`, proc, cfg });
    }
    for (const r of replicas) await waitHealthy(r.url, { timeoutMs: 20_000, out: r.proc.out });
  }

  afterEach(async () => {
    for (const r of replicas.splice(0)) {
      if (r.proc.child.exitCode === null && r.proc.child.signalCode === null) r.proc.child.kill('SIGTERM');
      await Promise.race([r.proc.exit, new Promise((res) => setTimeout(res, 5000))]);
      r.proc.child.kill('SIGKILL');
    }
  });

  it('16 concurrent cold pulls spread over 3 replicas cost the upstream the image once (≤ 1.05×), every digest matching', async () => {
    const bucket = await newBucket();
    await startReplicas(bucket, 3);
    // Paced so that the fills overlap: the replicas must share them, not find them finished.
    up.proxy.faults.slowBlobs = 40 * 2 ** 20;
    const pulls = await Promise.all(
      Array.from({ length: 16 }, (_, i) => pullToLayout(`docker://${replicas[i % 3]!.host}/library/big:v1`, path.join(work, `pull-${n++}`))),
    );
    for (const p of pulls) {
      expect(p.manifestDigest).toBe(img.big!.manifestDigest);
      for (const b of img.big!.blobs) expect(p.blobs).toContain(b.digest);
    }
    const ratio = up.proxy.blobBytes() / imageBytes(img.big!);
    expect(ratio).toBeLessThanOrEqual(1.05);
    // Each blob was led by one replica; the others streamed it from there (or read the bucket).
    let led = 0;
    let followed = 0;
    let upstreamBytes = 0;
    for (const r of replicas) {
      const text = await (await request(`${r.url}/metrics`)).body.text();
      led += metric(text, 'airlock_fleet_fills_total{role="led"}');
      followed += metric(text, 'airlock_fleet_fills_total{role="followed"}');
      upstreamBytes += metric(text, 'airlock_upstream_bytes_total{upstream="docker.io"}');
    }
    expect(led).toBe(img.big!.blobs.length);
    expect(followed).toBeGreaterThan(0);
    // What the replicas count as received from the upstream (blobs and manifests) matches.
    expect(upstreamBytes).toBeGreaterThanOrEqual(up.proxy.blobBytes());
    expect(upstreamBytes).toBeLessThan(up.proxy.blobBytes() + 64 * 1024);
    expect(await assertBucketVerified(bucket, 'fleet')).toBe(img.big!.blobs.length + 1);
    expect([...(await keys(bucket, 'fleet/.airlock/fleet/leases/')).keys()]).toEqual([]);
    expect(await pendingUploads(bucket)).toEqual([]);
  }, 180_000);

  it('revalidates a tag once per TTL window for the whole fleet, not once per replica', async () => {
    const bucket = await newBucket();
    await startReplicas(bucket, 3, 'cache:\n  tagTTL: 4s');
    const getTag = (r: Replica) =>
      request(`${r.url}/v2/library/multi/manifests/1.0`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } }).then(async (res) => {
        await res.body.dump();
        expect(res.headers['docker-content-digest']).toBe(img.multi!.manifestDigest);
      });
    // Answered requests only (a token-less first attempt gets a 401 and is repeated with a token).
    const manifestRequests = () => up.proxy.records.filter((x) => x.path.includes('/manifests/1.0') && x.status === 200);
    // Start just after a window boundary, so that both rounds fall in one window each.
    const alignedWait = () => new Promise((r) => setTimeout(r, 4_000 - (Date.now() % 4_000) + 200));
    await alignedWait();
    await getTag(replicas[0]!);
    await Promise.all(replicas.map(getTag));
    const first = manifestRequests().length;
    // The first pull's GET; the other replicas trust it for the window.
    expect(first).toBe(1);
    up.proxy.reset();
    // Past every replica's TTL, in a later window.
    await alignedWait();
    await alignedWait();
    await Promise.all(replicas.map(getTag));
    await Promise.all(replicas.map(getTag));
    const heads = manifestRequests();
    expect(heads.length).toBe(1);
    expect(heads[0]!.method).toBe('HEAD');
  }, 120_000);

  it('kill -9 of the filling replica mid-blob: the others take over and their clients get the right bytes; no partial object', async () => {
    const bucket = await newBucket();
    await startReplicas(bucket, 3);
    const blob = img.big!.blobs.find((x) => x.size > 10_000_000)!;
    up.proxy.faults.slowBlobs = 2 * 2 ** 20;
    const get = async (r: Replica) => {
      const res = await request(`${r.url}/v2/library/big/blobs/${blob.digest}`);
      const h = createHash('sha256');
      let bytes = 0;
      for await (const c of res.body) {
        h.update(c as Buffer);
        bytes += (c as Buffer).length;
      }
      return { status: res.statusCode, bytes, hex: h.digest('hex') };
    };
    const leader = get(replicas[0]!).catch((e: unknown) => e as Error);
    // Wait for the leader's lease, then start the followers.
    const leaseKey = `fleet/.airlock/fleet/leases/sha256-${blob.digest.slice(7)}`;
    for (let i = 0; i < 100 && !(await keys(bucket, leaseKey)).size; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await keys(bucket, leaseKey)).size).toBe(1);
    const followers = [get(replicas[1]!), get(replicas[2]!)].map((p) => p.catch((e: unknown) => e as Error));
    await new Promise((r) => setTimeout(r, 1500));
    replicas[0]!.proc.child.kill('SIGKILL');
    await leader;
    const outcomes = await Promise.all(followers);
    console.log(`kill test: followers ${outcomes.map((f) => (f instanceof Error ? `failed (${f.message})` : f.hex === blob.digest.slice(7) ? 'finished' : `wrong bytes (${f.bytes})`)).join(', ')}`);
    for (const f of outcomes) {
      // Finished by a takeover, or failed cleanly: then a retry succeeds.
      if (f instanceof Error || f.hex !== blob.digest.slice(7)) {
        const again = await get(replicas[1]!);
        expect(again.hex).toBe(blob.digest.slice(7));
      } else {
        expect(f.bytes).toBe(blob.size);
      }
    }
    // One of the survivors took the dead replica's lease over.
    let takeovers = 0;
    for (const r of replicas.slice(1)) takeovers += metric(await (await request(`${r.url}/metrics`)).body.text(), 'airlock_fleet_takeovers_total');
    expect(takeovers).toBeGreaterThanOrEqual(1);
    // Wait for the new leader's commit, then nothing partial is visible.
    const dataKey = `fleet/docker/registry/v2/blobs/sha256/${blob.digest.slice(7, 9)}/${blob.digest.slice(7)}/data`;
    for (let i = 0; i < 100 && !(await keys(bucket, dataKey)).size; i++) await new Promise((r) => setTimeout(r, 100));
    expect(createHash('sha256').update(await object(bucket, dataKey)).digest('hex')).toBe(blob.digest.slice(7));
    expect(await assertBucketVerified(bucket, 'fleet')).toBe(1);
    // The killed replica's multipart upload is invisible, and gc removes it.
    const gc = await runAirlock(['gc', '--config', replicas[1]!.cfg, '--grace', '0s'], 60_000);
    expect(gc.code, gc.stderr).toBe(0);
    expect(await pendingUploads(bucket)).toEqual([]);
  }, 180_000);
});
