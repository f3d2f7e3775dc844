/** Small objects (links, manifests) read whole through the SDK. */
import type { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { FileTooLargeError } from './driver.js';
import type { S3Bucket } from './s3-bucket.js';
import { isNotFound } from './s3-errors.js';

async function readAll(body: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > limit) {
      body.destroy();
      throw new FileTooLargeError(what, n, limit);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, n);
}

/** The whole content of a small object; undefined when missing. Refuses objects larger than maxBytes. */
export async function readObject(s3: S3Bucket, logical: string, maxBytes: number): Promise<Buffer | undefined> {
  try {
    const r = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: s3.key(logical) }));
    const body = r.Body as Readable;
    if ((r.ContentLength ?? 0) > maxBytes) {
      body.destroy();
      throw new FileTooLargeError(logical, r.ContentLength ?? 0, maxBytes);
    }
    return await readAll(body, maxBytes, logical);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}
