import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { S3DriverConfig } from './s3-client.js';
import { isNotFound } from './s3-errors.js';

/**
 * What the parts of the S3 driver share (the driver itself is one): the client, the bucket and
 * the key of a logical path under the configured prefix.
 */
export interface S3Bucket {
  readonly client: S3Client;
  readonly config: S3DriverConfig;
  readonly bucket: string;
  key(logical: string): string;
}

/** An object's size and time; undefined when no object has the key. */
export async function headObject(s3: S3Bucket, logical: string): Promise<{ size: number; modTime: Date; etag?: string } | undefined> {
  try {
    const r = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: s3.key(logical) }));
    return { size: r.ContentLength ?? 0, modTime: r.LastModified ?? new Date(0), etag: r.ETag };
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}
