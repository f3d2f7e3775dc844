import type { FastifyReply, FastifyRequest } from 'fastify';
import { nextLink, parsePagination } from '../../oci/pagination.js';
import type { Registry, Target } from '../../mirror/registry.js';

type Query = { n?: unknown; last?: unknown };

/** GET /v2/<name>/tags/list (distribution-spec "Listing Tags"), paginated with n and last. */
export async function listTags(registry: Registry, target: Target, maxN: number, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const page = parsePagination(request.query as Query, maxN);
  const result = await registry.listTags(target, page);
  if (result.next !== undefined) reply.header('link', nextLink(`/v2/${target.name}/tags/list`, page.n ?? result.items.length, result.next));
  reply.type('application/json').send({ name: target.name, tags: result.items });
}

/** GET /v2/_catalog, paginated in Distribution's order, with an RFC 5988 Link to the next page. */
export async function catalog(registry: Registry, maxN: number, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const page = parsePagination(request.query as Query, maxN);
  const result = await registry.catalog(page);
  if (result.next !== undefined) reply.header('link', nextLink('/v2/_catalog', page.n ?? result.items.length, result.next));
  reply.type('application/json').send({ repositories: result.items });
}
