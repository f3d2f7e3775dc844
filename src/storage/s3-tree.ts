/** Moves and deletes of whole trees: every key under a prefix, copied or deleted page by page. */
import { DeleteObjectsCommand } from '@aws-sdk/client-s3';
import type { StorageDriver } from './driver.js';
import { headObject, type S3Bucket } from './s3-bucket.js';
import { copyObject } from './s3-copy.js';
import { dirPrefix, keysUnder } from './s3-listing.js';

/** The driver as a tree operation sees it: a bucket that also deletes single objects and trees. */
type TreeDriver = S3Bucket & Pick<StorageDriver, 'deleteFile' | 'delete'>;

/** Moves one object, or every object under a directory (copy, then delete). */
export async function moveTree(driver: TreeDriver, from: string, to: string): Promise<void> {
  const h = await headObject(driver, from);
  if (h) {
    await copyObject(driver, driver.key(from), driver.key(to), h.size);
    await driver.deleteFile(from);
    return;
  }
  const fromPrefix = dirPrefix(driver, from);
  const toPrefix = dirPrefix(driver, to);
  let moved = 0;
  for await (const o of keysUnder(driver, from)) {
    await copyObject(driver, o.key, toPrefix + o.key.slice(fromPrefix.length), o.size);
    moved++;
  }
  if (moved === 0) throw Object.assign(new Error(`no such file or directory: ${from}`), { code: 'ENOENT' });
  await driver.delete(from);
}

/** Deletes the object and every object under it as a directory, 1000 keys a request. */
export async function deleteTree(driver: TreeDriver, logical: string): Promise<void> {
  if (logical) await driver.deleteFile(logical);
  let batch: string[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const r = await driver.client.send(new DeleteObjectsCommand({ Bucket: driver.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
    batch = [];
    const failed = (r.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (failed.length > 0) throw new Error(`the object store did not delete ${failed.length} objects (first: ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message ?? ''})`);
  };
  for await (const o of keysUnder(driver, logical)) {
    batch.push(o.key);
    if (batch.length === 1000) await flush();
  }
  await flush();
}
