/**
 * The registry API: all /v2/ traffic goes through one wildcard route and v2-path.ts, because
 * repository names hold any number of '/'-separated components and must be matched on the raw,
 * still-encoded path. Each request meets the auth plugin's v2 gate first, then is dispatched to
 * routes/*.ts on the endpoint and the repository the gate resolved.
 */
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { PushService } from '../../mirror/push-service.js';
import type { ImageSource, ResolvedName } from '../../mirror/image-source.js';
import { DeniedError, UnsupportedError } from '../../oci/errors.js';
import { deleteBlob, getBlob } from '../routes/blobs.js';
import { catalog, listTags } from '../routes/listings.js';
import { deleteManifest, getManifest, getReferrers, putManifest } from '../routes/manifests.js';
import { upload } from '../routes/uploads.js';

export interface V2Options {
  registry: ImageSource;
  /** Most entries a catalog or tags page may hold (and the default page size). */
  maxPageEntries: number;
  /** The write side: uploads, manifest pushes, deletes. */
  push?: PushService;
  /**
   * The store is read-only: every write is refused with this message, 405 UNSUPPORTED, as
   * Distribution's read-only maintenance mode refuses them (it answers 405 for those methods).
   */
  readOnly?: string;
}

export const v2: FastifyPluginCallback<V2Options> = function v2(app, opts, next) {
  const push = (): PushService => {
    if (opts.readOnly !== undefined) throw new UnsupportedError(opts.readOnly);
    if (!opts.push) throw new UnsupportedError('pushing is not enabled on this registry');
    return opts.push;
  };
  const canPull = (request: FastifyRequest) => (name: string) => app.auth.mayPull(request, name);

  // Returning the reply tells fastify the response is under way: an async onSend hook (the
  // audit log) delays the send, and fastify would otherwise send the handler's result again.
  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    await dispatch(request, reply);
    return reply;
  };

  const dispatch = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const passed = request.v2;
    if (!passed) throw new DeniedError('the request was not authorized');
    const { ep, repository } = passed;
    const read = request.method === 'GET' || request.method === 'HEAD';
    const named = (): ResolvedName => {
      if (!repository) throw new DeniedError('the request was not authorized');
      return repository;
    };
    const ns = (request.query as { ns?: string }).ns;
    switch (ep.kind) {
      case 'base':
        if (!read) throw new UnsupportedError(`${request.method} is not supported on /v2/`);
        reply.type('application/json').send({});
        return;
      case 'catalog':
        if (request.method !== 'GET') throw new UnsupportedError(`${request.method} is not supported on the catalog`);
        return catalog(opts.registry, opts.maxPageEntries, canPull(request), request, reply);
      case 'tags':
        if (request.method !== 'GET') throw new UnsupportedError(`${request.method} is not supported on tags/list`);
        return listTags(opts.registry, named(), ep.name, opts.maxPageEntries, request, reply);
      case 'manifest':
        if (read) return getManifest(opts.registry, named(), ep.reference, request, reply);
        if (request.method === 'PUT') return putManifest(push(), named(), ep.reference, request, reply);
        if (request.method === 'DELETE') return deleteManifest(push(), named(), ep.reference, reply);
        throw new UnsupportedError(`${request.method} of manifests is not supported`);
      case 'blob':
        if (read) return getBlob(opts.registry, named(), ep.digest, request, reply);
        if (request.method === 'DELETE') return deleteBlob(push(), named(), ep.digest, reply);
        throw new UnsupportedError(`${request.method} of blobs is not supported; upload through /v2/${ep.name}/blobs/uploads/`);
      case 'upload': {
        // The mount source is resolved like the target (same ns) and judged on its stored name,
        // by the access rules and by the upstream's allow and deny lists.
        const mountFrom = async (from: string): Promise<ResolvedName | undefined> => {
          const r = await opts.registry.resolve({ name: from, ns });
          if (!canPull(request)(r.storeName)) return undefined;
          try {
            opts.registry.admit(r);
          } catch {
            return undefined;
          }
          return r;
        };
        return upload(push(), named(), ep.session, mountFrom, request, reply);
      }
      case 'referrers':
        if (!read) throw new UnsupportedError(`${request.method} is not supported on referrers`);
        return getReferrers(opts.registry, named(), ep.digest, request, reply);
      case 'unknown':
        reply.code(404).type('application/json; charset=utf-8').send({
          errors: [{ code: 'NOT_FOUND', message: `no such endpoint: ${request.url.split('?')[0]}` }],
        });
        return;
    }
  };

  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2', onRequest: app.auth.v2Gate, handler });
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2/*', onRequest: app.auth.v2Gate, handler });
  next();
};
