import type { FastifyReply, FastifyRequest } from 'fastify';
import { Digest } from '../../oci/digest.js';
import { RangeInvalidError } from '../../oci/errors.js';
import { contentRange, parseRange } from '../../oci/range.js';
import type { PushService } from '../../mirror/push-service.js';
import type { ImageSource, ResolvedName } from '../../mirror/image-source.js';
import { blobBody } from '../blob-body.js';
import { etagMatches } from '../etag.js';

/**
 * GET/HEAD /v2/<name>/blobs/<digest> (distribution-spec "Pulling blobs"), with single byte
 * ranges (RFC 9110 §14); a blob is served only to a repository that links it.
 */
export async function getBlob(registry: ImageSource, repository: ResolvedName, digestText: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const digest = Digest.parse(digestText);
  const blob = await registry.getBlob(repository, digest, { head: request.method === 'HEAD' });
  request.cacheOutcome = blob.cache;
  const d = digest.toString();
  reply
    .header('docker-content-digest', d)
    .header('etag', `"${d}"`)
    .header('accept-ranges', 'bytes')
    .header('cache-control', 'max-age=31536000');
  if (etagMatches(request.headers['if-none-match'], d)) {
    reply.code(304).send();
    return;
  }
  if (blob.redirect && request.method === 'GET') {
    // storage.redirect: the object store serves the bytes (as Distribution's redirect does).
    reply.code(307).header('location', await blob.redirect()).header('content-length', 0).send();
    return;
  }
  reply.header('content-type', 'application/octet-stream');
  // While a blob is being filled a Range is answered with the whole body (never a 206 with a
  // Content-Range we cannot yet honour).
  const range = blob.rangeable ? parseRange(request.headers.range, blob.size) : ({ kind: 'none' } as const);
  if (range.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${blob.size}`);
    throw new RangeInvalidError(`range ${request.headers.range ?? ''} is not satisfiable for a blob of ${blob.size} bytes`);
  }
  if (range.kind === 'range') {
    reply.code(206).header('content-range', contentRange(range.start, range.end, blob.size)).header('content-length', range.end - range.start + 1);
    if (request.method === 'HEAD') return reply.send();
    return reply.send(blobBody(await blob.open({ start: range.start, end: range.end })));
  }
  reply.header('content-length', blob.size);
  if (request.method === 'HEAD') return reply.send();
  return reply.send(blobBody(await blob.open()));
}

/** DELETE /v2/<name>/blobs/<digest>: unlinks it from the repository, 202 ("Deleting blobs"). */
export async function deleteBlob(push: PushService, repository: ResolvedName, digestText: string, reply: FastifyReply): Promise<void> {
  const digest = Digest.parse(digestText);
  await push.deleteBlob(repository, digest);
  reply.code(202).header('content-length', 0).send();
}
