import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('stored-file streams with recycled buffers', () => {
  let dir: string;
  let driver: FilesystemDriver;
  let data: Buffer;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-pooled-'));
    driver = new FilesystemDriver(dir);
    data = randomBytes(16 * 1024 * 1024 + 12345);
    await writeFile(path.join(dir, 'blob'), data);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // Writing to responses in recycled buffers: test/unit/http/blob-body.test.ts.
  it('gives fresh buffers to other consumers, which may keep every chunk', async () => {
    // A PassThrough keeps the chunks it was written until they are read: reading them only at
    // the end shows whether any was overwritten by a later read.
    const s = (await driver.readStream('blob'))!;
    const hold = new PassThrough({ highWaterMark: data.length * 2 });
    s.pipe(hold);
    await new Promise((r) => s.once('end', r));
    const chunks: Buffer[] = [];
    for (let c = hold.read() as Buffer | null; c; c = hold.read() as Buffer | null) chunks.push(c);
    expect(sha(Buffer.concat(chunks))).toBe(sha(data));
    const it2 = (await driver.readStream('blob', { start: 5, end: 1_000_004 }))!;
    const got: Buffer[] = [];
    for await (const c of it2) got.push(c as Buffer);
    expect(sha(Buffer.concat(got))).toBe(sha(data.subarray(5, 1_000_005)));
  });
});
