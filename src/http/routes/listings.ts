import type { FastifyReply, FastifyRequest } from 'fastify';
import { nextLink, parsePagination } from '../../oci/pagination.js';
import type { ImageSource, ResolvedName } from '../../mirror/image-source.js';

type Query = { n?: unknown; last?: unknown };

/**
 * GET /v2/<name>/tags/list (distribution-spec "Listing Tags"), paginated with n and last. The
 * answer names the repository as the client wrote it; the Link keeps its spelling and `ns`.
 */
export async function listTags(registry: ImageSource, repository: ResolvedName, name: string, maxN: number, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const page = parsePagination(request.query as Query, maxN);
  const result = await registry.listTags(repository, page);
  const ns = (request.query as { ns?: string }).ns;
  if (result.next !== undefined) reply.header('link', nextLink(`/v2/${name}/tags/list`, page.n ?? result.items.length, result.next, ns));
  reply.type('application/json').send({ name, tags: result.items });
}

/**
 * GET /v2/_catalog, paginated in Distribution's order, with an RFC 5988 Link to the next page.
 * Lists only the repositories the caller may pull.
 */
export async function catalog(registry: ImageSource, maxN: number, visible: (storeName: string) => boolean, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const page = parsePagination(request.query as Query, maxN);
  const result = await registry.catalog(page, visible);
  if (result.next !== undefined) reply.header('link', nextLink('/v2/_catalog', page.n ?? result.items.length, result.next));
  reply.type('application/json').send({ repositories: result.items });
}
