/**
 * How request bodies are received, for every route: as bytes, never parsed, and no slower than
 * the floor of http.minBodyRate.
 */
import { watchBodyRate, type BodyRateOptions } from '../body-rate.js';
import { unencapsulated } from './unencapsulated.js';

export interface BodyParsingOptions {
  /** Largest body read into memory (http.maxManifestSize). */
  bodyLimit: number;
  /** The floor under request body rates (http.minBodyRate); absent: none. */
  bodyRate?: BodyRateOptions;
  /** The console's archive upload (plugins/archives.ts), when served: a stream too. */
  archivePath?: string;
}

/** Blob uploads and archive uploads (plugins/archives.ts): bodies of any size, kept as streams. */
function isUploadUrl(url: string, archivePath: string | undefined): boolean {
  const q = url.indexOf('?');
  const p = q < 0 ? url : url.slice(0, q);
  return p.includes('/blobs/uploads') || p === archivePath;
}

export const bodyParsing = unencapsulated<BodyParsingOptions>(function bodyParsing(app, { bodyLimit, bodyRate, archivePath }, next) {
  // Bodies are bytes: a manifest must be stored exactly as sent, never parsed and re-serialized.
  // Blob uploads stay streams (handed to the upload as they arrive, any size); everything else
  // is read into memory up to bodyLimit (http.maxManifestSize).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    if (isUploadUrl(request.url, archivePath)) {
      done(null, payload);
      return;
    }
    const tooLarge = () =>
      Object.assign(new Error(`the request body is larger than ${bodyLimit} bytes, the limit for manifests (http.maxManifestSize)`), { statusCode: 413 });
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > bodyLimit) {
      payload.resume();
      done(tooLarge(), undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let finished = false;
    payload.on('data', (c: Buffer) => {
      if (finished) return;
      size += c.length;
      if (size > bodyLimit) {
        finished = true;
        done(tooLarge(), undefined);
        return;
      }
      chunks.push(c);
    });
    payload.on('end', () => {
      if (finished) return;
      finished = true;
      done(null, Buffer.concat(chunks, size));
    });
    payload.on('error', (e) => {
      if (finished) return;
      finished = true;
      done(e, undefined);
    });
  });

  if (bodyRate) watchBodyRate(app, bodyRate);
  next();
});
