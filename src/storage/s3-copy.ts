/** Server-side copies: S3 has no rename, so a move is a copy and a delete. */
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, UploadPartCopyCommand, type CompletedPart } from '@aws-sdk/client-s3';
import type { S3Bucket } from './s3-bucket.js';

/** S3's largest single copy. */
export const MAX_COPY = 5 * 2 ** 30;

/** Server-side copy of one object (in parts above S3's 5 GiB single-copy limit). */
export async function copyObject(s3: S3Bucket, fromKey: string, toKey: string, size: number): Promise<void> {
  const source = copySource(s3.bucket, fromKey);
  if (size <= MAX_COPY) {
    await s3.client.send(new CopyObjectCommand({ Bucket: s3.bucket, Key: toKey, CopySource: source }));
    return;
  }
  const { UploadId } = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: toKey }));
  try {
    const parts: CompletedPart[] = [];
    const step = copyStep(size);
    for (let at = 0, n = 1; at < size; at += step, n++) {
      const r = await s3.client.send(new UploadPartCopyCommand({
        Bucket: s3.bucket, Key: toKey, UploadId, PartNumber: n, CopySource: source,
        CopySourceRange: `bytes=${at}-${Math.min(size, at + step) - 1}`,
      }));
      parts.push({ PartNumber: n, ETag: r.CopyPartResult?.ETag });
    }
    await s3.client.send(new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key: toKey, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (e) {
    await s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: toKey, UploadId })).catch(() => undefined);
    throw e;
  }
}

/** x-amz-copy-source: bucket/key with each segment percent-encoded (a '?' would start a version id). */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Part size for a server-side copy of `size` bytes: equal parts of at most 1 GiB, so that no part
 * but the last falls under S3's 5 MiB minimum (1 GiB steps would leave a 2 MiB part before the
 * new bytes of an append to a 1 GiB + 2 MiB object).
 */
export function copyStep(size: number): number {
  const parts = Math.max(1, Math.ceil(size / 2 ** 30));
  return Math.ceil(size / parts);
}
