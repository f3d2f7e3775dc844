import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseAccept } from '../../oci/media-types.js';
import { lookupManifestReference, parseManifestReference } from '../../oci/reference.js';
import type { PushService } from '../../mirror/push-service.js';
import type { ImageSource, ResolvedName } from '../../mirror/image-source.js';
import { Digest } from '../../oci/digest.js';
import { ManifestInvalidError } from '../../oci/errors.js';
import { etagMatches } from '../etag.js';

/**
 * GET/HEAD /v2/<name>/manifests/<reference> (distribution-spec "Pulling manifests"): the stored
 * bytes, exactly, with their media type and digest.
 */
export async function getManifest(registry: ImageSource, repository: ResolvedName, reference: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const ref = lookupManifestReference(reference);
  const m = await registry.getManifest(repository, ref, parseAccept(request.headers.accept), { pull: request.method !== 'HEAD' });
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

/**
 * PUT /v2/<name>/manifests/<reference> (distribution-spec "Pushing manifests"): 201 with the
 * digest, and `OCI-Subject` when the manifest has a subject (so clients skip the tag fallback).
 */
export async function putManifest(push: PushService, repository: ResolvedName, reference: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const ref = parseManifestReference(reference);
  const bytes = Buffer.isBuffer(request.body) ? request.body : undefined;
  if (!bytes || bytes.byteLength === 0) throw new ManifestInvalidError('the request has no manifest in its body');
  const r = await push.putManifest(repository, ref, bytes, request.headers['content-type']);
  const d = r.digest.toString();
  reply.code(201).header('location', `/v2/${repository.storeName}/manifests/${d}`).header('docker-content-digest', d).header('content-length', 0);
  if (r.subject) reply.header('oci-subject', r.subject.toString());
  reply.send();
}

/** DELETE /v2/<name>/manifests/<digest|tag>: 202 (distribution-spec "Deleting manifests"). */
export async function deleteManifest(push: PushService, repository: ResolvedName, reference: string, reply: FastifyReply): Promise<void> {
  const ref = lookupManifestReference(reference);
  await push.deleteManifest(repository, ref);
  reply.code(202).header('content-length', 0).send();
}

/** GET /v2/<name>/referrers/<digest>[?artifactType=] (distribution-spec 1.1 "Listing Referrers"). */
export async function getReferrers(registry: ImageSource, repository: ResolvedName, digestText: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const d = Digest.parse(digestText);
  const at = (request.query as { artifactType?: unknown }).artifactType;
  const artifactType = typeof at === 'string' && at !== '' ? at : undefined;
  const bytes = await registry.referrers(repository, d, artifactType);
  if (artifactType) reply.header('oci-filters-applied', 'artifactType');
  reply.type('application/vnd.oci.image.index.v1+json').header('content-length', bytes.byteLength);
  if (request.method === 'HEAD') reply.send();
  else reply.send(bytes);
}
