/**
 * One blob's transfer from an upstream, across a fill's resumes: the body from an offset (a Range
 * request), where that body really starts (a 206's Content-Range, or 0 when the upstream ignored
 * the range), and the blob bytes it brought, counted in the client's stats once the fill settled.
 */
import type { Readable } from 'node:stream';
import { UpstreamBadResponseError } from '../oci/errors.js';
import type { UpstreamClient } from './client.js';

export interface BlobBody {
  /** The blob's whole size, when the upstream said. */
  total?: number;
  /** Where the body starts in the blob: 0 when the range was ignored. */
  start: number;
  body: Readable;
}

/** RFC 9110 §14.4: `bytes first-last/complete-length`, the length possibly unknown (`*`). */
const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

export class BlobTransfer {
  constructor(
    private readonly upstream: UpstreamClient,
    private readonly repository: string,
    private readonly digest: string,
  ) {}

  /** The blob from `offset` on (the whole blob when the upstream ignores the Range). */
  async open(offset: number): Promise<BlobBody> {
    const res = await this.upstream.getBlob(this.repository, this.digest, offset);
    const len = Number(res.headers['content-length']);
    let start = 0;
    let total = Number.isSafeInteger(len) ? len : undefined;
    if (res.statusCode === 206) {
      const m = CONTENT_RANGE.exec(String(res.headers['content-range'] ?? ''));
      if (!m) {
        res.body.destroy();
        throw new UpstreamBadResponseError(`upstream ${this.upstream.name} sent a 206 without a valid Content-Range`);
      }
      start = Number(m[1]);
      total = m[3] === '*' ? undefined : Number(m[3]);
    }
    return { total, start, body: res.body };
  }

  /** Blob bytes this upstream sent for the transfer (manifests are counted by the client itself). */
  received(bytes: number): void {
    this.upstream.stats.bytes += bytes;
  }
}
