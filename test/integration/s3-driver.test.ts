/**
 * The storage driver suite (test/helpers/driver-suite.ts) on the S3 driver against a real object
 * store: Ceph's radosgw as a single-node cluster, started once for the file; each test gets a
 * key prefix of its own in one bucket.
 */
import { readdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import type { StorageDriver } from '../../src/storage/driver.js';
import { S3Driver } from '../../src/storage/s3-driver.js';
import { driverSuite } from '../helpers/driver-suite.js';
import { radosgwClient, startRadosgw, type Radosgw } from '../helpers/radosgw.js';

const BUCKET = 'airlock-driver-suite';
const PART = 5 << 20;
let gw: Radosgw | undefined;
let s3: S3Client | undefined;
let work: string;
let n = 0;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-s3-driver-'));
  gw = await startRadosgw();
  s3 = radosgwClient(gw);
  await gw.createBucket(BUCKET);
}, 180_000);

afterAll(async () => {
  s3?.destroy();
  await gw?.stop();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

/** Multipart uploads still open under the driver's prefix, and spool files left on disk. */
async function leftovers(driver: StorageDriver): Promise<string[]> {
  const d = driver as S3Driver;
  const r = await s3!.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${d.config.prefix}/` }));
  const spool = await readdir(d.spool.tmpDir).catch(() => []);
  return [...(r.Uploads ?? []).map((u) => `upload ${u.Key ?? ''}`), ...spool.map((f) => `spool ${f}`)];
}

driverSuite('s3 (radosgw)', {
  create: async () =>
    new S3Driver(
      {
        endpoint: gw!.endpoint,
        region: gw!.region,
        bucket: BUCKET,
        prefix: `suite-${n++}`,
        accessKey: gw!.accessKey,
        secretKey: gw!.secretKey,
        forcePathStyle: true,
        partSize: PART,
      },
      path.join(work, `spool-${n}`),
    ),
  destroy: async (driver) => (driver as S3Driver).close(),
  leftovers,
  partSize: PART,
  presign: true,
  sweepUnfinished: true,
});
