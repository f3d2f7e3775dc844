import { PutObjectCommand } from '@aws-sdk/client-s3';
import { AppendOffsetError } from './driver.js';
import type { FilesystemDriver } from './filesystem-driver.js';
import { readFully } from './read-fully.js';
import { headObject, type S3Bucket } from './s3-bucket.js';
import { MultipartWriter } from './s3-multipart-writer.js';
import { readObject } from './s3-read-object.js';

/** S3's smallest part but the last. */
const MIN_PART = 5 << 20;

/**
 * Appends to an object (a chunked push): replaces it with a multipart upload of the old object
 * (copied server-side) and the new bytes, all or nothing. Small objects are rewritten whole.
 */
export async function appendObject(s3: S3Bucket, spoolDriver: FilesystemDriver, logical: string, source: AsyncIterable<Uint8Array>, expectedSize?: number): Promise<number | undefined> {
  const h = await headObject(s3, logical);
  if (!h) return undefined;
  if (expectedSize !== undefined && h.size !== expectedSize) throw new AppendOffsetError(logical, h.size, expectedSize);
  // The new bytes are spooled first: their length is then known, and a broken body leaves the
  // object as it was (all or nothing, as the filesystem driver's truncate).
  const spool = await spoolDriver.stage();
  try {
    const copyOld = h.size >= MIN_PART;
    if (!copyOld && h.size > 0) {
      const old = await readObject(s3, logical, MIN_PART);
      if (!old || old.length !== h.size) throw new AppendOffsetError(logical, old?.length ?? 0, h.size);
      await spool.write(old);
    }
    for await (const chunk of source) await spool.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    await spool.flush();
    const spooled = spool.bytesWritten;
    const added = copyOld ? spooled : spooled - h.size;
    if (added === 0) return h.size;
    const reader = (await spool.openReader())!;
    try {
      const key = s3.key(logical);
      if (!copyOld && spooled <= s3.config.partSize) {
        const buf = Buffer.allocUnsafe(spooled);
        await readFully(reader, buf, 0);
        await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: buf, ContentLength: spooled }));
      } else {
        const up = new MultipartWriter(s3, key);
        try {
          if (copyOld) await up.copyPart(key, h.size);
          for (let at = 0; at < spooled; at += s3.config.partSize) {
            const buf = Buffer.allocUnsafe(Math.min(s3.config.partSize, spooled - at));
            await readFully(reader, buf, at);
            await up.part(buf);
          }
          await up.complete();
        } catch (e) {
          await up.abort();
          throw e;
        }
      }
    } finally {
      await reader.close();
    }
    return h.size + added;
  } finally {
    await spool.abort();
  }
}
