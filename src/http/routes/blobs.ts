import type { FastifyReply, FastifyRequest } from 'fastify';
import { Digest } from '../../oci/digest.js';
import { RangeInvalidError } from '../../oci/errors.js';
import { contentRange, parseRange } from '../../oci/range.js';
import type { Registry } from '../../mirror/registry.js';
import { etagMatches } from '../etag.js';

/**
 * GET/HEAD /v2/<name>/blobs/<digest> (distribution-spec "Pulling blobs"), with single byte
 * ranges (RFC 9110 §14); a blob is served only to a repository that links it.
 */
export async function getBlob(registry: Registry, name: string, digestText: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const digest = Digest.parse(digestText);
  const blob = await registry.getBlob(name, digest);
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
  reply.header('content-type', 'application/octet-stream');
  const range = parseRange(request.headers.range, blob.size);
  if (range.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${blob.size}`);
    throw new RangeInvalidError(`range ${request.headers.range ?? ''} is not satisfiable for a blob of ${blob.size} bytes`);
  }
  if (range.kind === 'range') {
    reply.code(206).header('content-range', contentRange(range.start, range.end, blob.size)).header('content-length', range.end - range.start + 1);
    if (request.method === 'HEAD') return reply.send();
    return reply.send(await blob.open({ start: range.start, end: range.end }));
  }
  reply.header('content-length', blob.size);
  if (request.method === 'HEAD') return reply.send();
  return reply.send(await blob.open());
}
