import type { Readable } from 'node:stream';
import { requestUrl, type Dispatcher } from '../runtime/undici.js';
import type { S3Bucket } from './s3-bucket.js';
import type { ReadUrls } from './s3-presign.js';

/**
 * Blob bodies are read with undici from a URL the SDK presigned (signing is local): the SDK's
 * own Node handler moved bytes markedly slower on the warm path.
 * See bench/PERFORMANCE.md#s3-blob-bodies-through-undici.
 */
export async function readObjectStream(s3: S3Bucket, urls: ReadUrls, http: Dispatcher, logical: string, range?: { start: number; end: number }): Promise<Readable | undefined> {
  const key = s3.key(logical);
  for (let attempt = 0; ; attempt++) {
    // A retry signs anew: the store may have refused a kept URL (a clock step, a rotated key).
    const url = await urls.get(key, attempt > 0);
    let res: Dispatcher.ResponseData;
    try {
      res = await requestUrl(http, url, { headers: range ? { range: `bytes=${range.start}-${range.end}` } : {} });
    } catch (e) {
      if (attempt < 2) continue;
      throw e;
    }
    if (res.statusCode === 206 || (res.statusCode === 200 && (!range || (range.start === 0 && Number(res.headers['content-length']) === range.end + 1)))) return res.body;
    if (res.statusCode === 200) {
      // A store that ignored the Range: its bytes would start at 0, not where we asked.
      res.body.destroy();
      throw new Error(`the object store ignored the range of GET ${key}`);
    }
    const text = (await res.body.text().catch(() => '')).slice(0, 300);
    if (res.statusCode === 404 || res.statusCode === 416) return undefined;
    if ((res.statusCode >= 500 || (res.statusCode === 403 && attempt === 0)) && attempt < 2) continue;
    throw new Error(`the object store answered ${res.statusCode} to GET ${key}: ${text}`);
  }
}
