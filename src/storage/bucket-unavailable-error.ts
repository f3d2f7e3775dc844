/** A bucket that does not answer or refuses writes: refused at start-up with one clear line. */
export class BucketUnavailableError extends Error {
  constructor(bucket: string, endpoint: string | undefined, cause: unknown) {
    const e = cause as Error & { $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    const what = e.name === 'NotFound' || status === 404 ? 'does not exist' : e.message || e.name || String(cause);
    super(`storage.s3: bucket ${bucket}${endpoint ? ` at ${endpoint}` : ''} is not usable: ${what}${status ? ` (HTTP ${status})` : ''}`, { cause });
    this.name = 'BucketUnavailableError';
  }
}
