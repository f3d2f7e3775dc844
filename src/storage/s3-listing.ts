/** Directories are key prefixes: listed with a delimiter, page by page. */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { FileInfo } from './driver.js';
import type { S3Bucket } from './s3-bucket.js';

/** The names directly under a directory, sorted by code unit; undefined when it has none. */
export async function listNames(s3: S3Bucket, logical: string): Promise<string[] | undefined> {
  const prefix = dirPrefix(s3, logical);
  const names = new Set<string>();
  let token: string | undefined;
  do {
    const r = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
    for (const cp of r.CommonPrefixes ?? []) if (cp.Prefix) names.add(cp.Prefix.slice(prefix.length, -1));
    for (const o of r.Contents ?? []) if (o.Key && o.Key.length > prefix.length) names.add(o.Key.slice(prefix.length));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  if (names.size === 0) return undefined;
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A "directory" is a prefix with at least one key under it. */
export async function directoryInfo(s3: S3Bucket, logical: string): Promise<FileInfo | undefined> {
  const r = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: dirPrefix(s3, logical), MaxKeys: 1 }));
  const first = r.Contents?.[0];
  if (!first) return undefined;
  return { size: 0, modTime: first.LastModified ?? new Date(0), isDirectory: true };
}

/** Every key under a directory, page by page (for move and delete of a tree). */
export async function* keysUnder(s3: S3Bucket, logical: string): AsyncGenerator<{ key: string; size: number }> {
  const prefix = dirPrefix(s3, logical);
  let token: string | undefined;
  do {
    const r = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) if (o.Key) yield { key: o.Key, size: o.Size ?? 0 };
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
}

/** The key prefix of a directory: its key and '/' (the empty prefix for the bucket's root). */
export function dirPrefix(s3: S3Bucket, logical: string): string {
  const k = s3.key(logical);
  return k ? `${k}/` : '';
}
