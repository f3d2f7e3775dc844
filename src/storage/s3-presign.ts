import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { LRUCache } from 'lru-cache';
import type { S3Bucket } from './s3-bucket.js';

/** A URL that GETs the key without credentials for `expiresIn` seconds (signed locally, no request). */
export function presignGet(s3: S3Bucket, key: string, expiresIn: number): Promise<string> {
  return getSignedUrl(s3.client, new GetObjectCommand({ Bucket: s3.bucket, Key: key }), { expiresIn });
}

/** How long a body URL is signed for, in seconds; it is reused for the first half of that. */
const READ_URL_LIFE = 600;

/**
 * The URLs blob bodies are read from, each reused for half its life: signing runs the SDK's
 * middleware stack on every call, and a warm blob is read by every client that pulls it.
 * See bench/PERFORMANCE.md#fleet-warm-pull.
 */
export class ReadUrls {
  readonly #urls = new LRUCache<string, string>({ max: 4096, ttl: (READ_URL_LIFE / 2) * 1000, ttlAutopurge: false });

  constructor(private readonly s3: S3Bucket) {}

  /** A URL for `key`; `fresh` signs a new one (the store refused the one it had). */
  async get(key: string, fresh = false): Promise<string> {
    const kept = fresh ? undefined : this.#urls.get(key);
    if (kept) return kept;
    const url = await presignGet(this.s3, key, READ_URL_LIFE);
    this.#urls.set(key, url);
    return url;
  }
}
