import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseAccept } from '../../oci/media-types.js';
import { parseManifestReference } from '../../oci/reference.js';
import type { Registry, Target } from '../../mirror/registry.js';
import { etagMatches } from '../etag.js';

/**
 * GET/HEAD /v2/<name>/manifests/<reference> (distribution-spec "Pulling manifests"): the stored
 * bytes, exactly, with their media type and digest.
 */
export async function getManifest(registry: Registry, target: Target, reference: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const ref = parseManifestReference(reference);
  const m = await registry.getManifest(target, ref, parseAccept(request.headers.accept));
  request.cacheOutcome = m.cache;
  const digest = m.digest.toString();
  const etag = `"${digest}"`;
  reply.header('docker-content-digest', digest).header('etag', etag);
  if (etagMatches(request.headers['if-none-match'], digest)) {
    reply.code(304).send();
    return;
  }
  reply.header('content-type', m.mediaType).header('content-length', m.bytes.byteLength);
  if (request.method === 'HEAD') reply.send();
  else reply.send(m.bytes);
}
