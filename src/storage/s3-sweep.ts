import { AbortMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { BLOBS } from './paths.js';
import type { S3Bucket } from './s3-bucket.js';
import { isNotFound } from './s3-errors.js';

/**
 * Aborts multipart uploads into blob keys (fills and commits: airlock's, never Distribution's,
 * which uploads under _uploads/) begun before `before`, unless `live` says a writer still owns
 * the key. Other uploads in the bucket are left alone.
 */
export async function sweepUnfinishedUploads(s3: S3Bucket, before: Date, live?: (path: string) => Promise<boolean>): Promise<number> {
  let count = 0;
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  const Prefix = s3.key(BLOBS) + '/';
  const base = s3.config.prefix ? `${s3.config.prefix}/` : '';
  for (;;) {
    const r = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix, KeyMarker, UploadIdMarker }));
    for (const u of r.Uploads ?? []) {
      if (!u.Key || !u.UploadId || (u.Initiated && u.Initiated >= before)) continue;
      if (live && (await live(u.Key.slice(base.length)))) continue;
      await s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: u.Key, UploadId: u.UploadId })).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
      count++;
    }
    if (!r.IsTruncated) return count;
    KeyMarker = r.NextKeyMarker;
    UploadIdMarker = r.NextUploadIdMarker;
  }
}
