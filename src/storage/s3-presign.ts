import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { S3Bucket } from './s3-bucket.js';

/** A URL that GETs the key without credentials for `expiresIn` seconds (signed locally, no request). */
export function presignGet(s3: S3Bucket, key: string, expiresIn: number): Promise<string> {
  return getSignedUrl(s3.client, new GetObjectCommand({ Bucket: s3.bucket, Key: key }), { expiresIn });
}
