/**
 * Blob bodies are read from presigned URLs that the S3 driver keeps for half their life. An HTTP
 * server stands in for the object store here, so the test sees every URL the driver sends and
 * can refuse one; signing is local, so the SDK runs unchanged.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { S3Driver } from '../../../src/storage/s3-driver.js';

let server: Server;
let seen: string[];
let refuse: number;
let driver: S3Driver;
let work: string;

beforeEach(async () => {
  seen = [];
  refuse = 0;
  server = createServer((req, res) => {
    seen.push(req.url ?? '');
    if (refuse > 0) {
      refuse--;
      res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code></Error>');
      return;
    }
    res.writeHead(200, { 'content-length': 5 }).end('bytes');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-read-urls-'));
  const { port } = server.address() as AddressInfo;
  driver = new S3Driver(
    { endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', bucket: 'b-test', prefix: 'p', accessKey: 'AK', secretKey: 'SK', forcePathStyle: true, partSize: 5 << 20 },
    path.join(work, 'spool'),
  );
});

afterEach(async () => {
  driver.close();
  await new Promise((r) => server.close(r));
  await rm(work, { recursive: true, force: true });
});

async function read(logical: string): Promise<string | undefined> {
  const body = await driver.readStream(logical);
  return body ? Buffer.concat(await body.toArray()).toString() : undefined;
}

describe('S3 body URLs', () => {
  it('signs a key once and reuses the URL for the reads that follow', async () => {
    expect(await read('docker/registry/v2/blobs/sha256/aa/aa00/data')).toBe('bytes');
    // A signature's date has second precision: signed again, the URL would differ.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await read('docker/registry/v2/blobs/sha256/aa/aa00/data')).toBe('bytes');
    expect(await read('docker/registry/v2/blobs/sha256/bb/bb00/data')).toBe('bytes');
    expect(seen).toHaveLength(3);
    expect(seen[0]).toContain('/b-test/p/docker/registry/v2/blobs/sha256/aa/aa00/data?');
    expect(seen[0]).toContain('X-Amz-Signature=');
    expect(seen[1]).toBe(seen[0]);
    expect(seen[2]).toContain('/bb00/data?');
  });

  it('signs anew when the store refuses a kept URL, and keeps the new one', async () => {
    expect(await read('k/one')).toBe('bytes');
    refuse = 1;
    // Signed a second later, the new URL differs from the refused one.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await read('k/one')).toBe('bytes');
    expect(seen).toHaveLength(3);
    expect(seen[1]).toBe(seen[0]);
    expect(seen[2]).not.toBe(seen[1]);
    expect(await read('k/one')).toBe('bytes');
    expect(seen[3]).toBe(seen[2]);
  });

  it('gives up with the store\'s answer when a fresh URL is refused too', async () => {
    refuse = 3;
    await expect(read('k/two')).rejects.toThrow(/answered 403 to GET p\/k\/two: .*AccessDenied/);
    expect(seen).toHaveLength(2);
  });
});
