/**
 * Builds the fastify application for the registry API. It never listens: compose.ts (or a test)
 * decides where. All /v2/ traffic goes through one wildcard route and v2-path.ts, because
 * repository names hold any number of '/'-separated components and must be matched on the raw,
 * still-encoded path.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../logging/logger.js';
import type { Registry } from '../mirror/registry.js';
import { NameInvalidError, UnsupportedError } from '../oci/errors.js';
import { REGISTRY_HOST } from '../oci/reference.js';
import { sendError } from './error-handler.js';
import { getBlob } from './routes/blobs.js';
import { catalog, listTags } from './routes/listings.js';
import { getManifest } from './routes/manifests.js';
import { parseV2Path, type V2Endpoint } from './v2-path.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** hit / miss / stale …, set by handlers for the request log line. */
    cacheOutcome?: string;
    /** Which endpoint served the request, for the log line and metrics. */
    endpoint?: V2Endpoint['kind'];
  }
}

export interface AppOptions {
  registry: Registry;
  logger: Logger;
  /** Most entries a catalog or tags page may hold (and the default page size). */
  maxPageEntries: number;
  /** Largest request body accepted (manifest pushes). */
  bodyLimit?: number;
}

const API_VERSION = 'registry/2.0';

export function buildApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // One line per request is written in onResponse below, with the fields operators need.
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    // Repository names may be 255 characters and references 135: the whole path is one wildcard.
    routerOptions: { maxParamLength: 4096 },
    bodyLimit: opts.bodyLimit ?? 4 * 2 ** 20,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Requests that the router itself rejects (bad percent-encoding, …) still get OCI error JSON.
    frameworkErrors: (err, request, reply) => sendError(err, request, reply),
  });

  // Bodies are bytes: a manifest must be stored exactly as sent, never parsed and re-serialized.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.decorateRequest('cacheOutcome', undefined);
  app.decorateRequest('endpoint', undefined);

  app.addHook('onRequest', (_request, reply, done) => {
    reply.header('docker-distribution-api-version', API_VERSION);
    done();
  });

  app.addHook('onResponse', (request, reply, done) => {
    const len = reply.getHeader('content-length');
    request.log.info(
      {
        method: request.method,
        url: request.url,
        endpoint: request.endpoint,
        status: reply.statusCode,
        bytes: request.method === 'HEAD' || reply.statusCode === 304 ? 0 : Number(len ?? 0),
        ms: Math.round(reply.elapsedTime * 10) / 10,
        cache: request.cacheOutcome,
        remote: request.ip,
      },
      'request',
    );
    done();
  });

  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).type('application/json; charset=utf-8').send({
      errors: [{ code: 'NOT_FOUND', message: `no such endpoint: ${request.method} ${request.url.split('?')[0]}` }],
    });
  });

  const v2 = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const ep = parseV2Path(request.url);
    request.endpoint = ep.kind;
    const ns = (request.query as { ns?: unknown }).ns;
    if (ns !== undefined && (typeof ns !== 'string' || ns.length > 255 || !REGISTRY_HOST.test(ns.toLowerCase()))) {
      throw new NameInvalidError('ns must be a single registry host name');
    }
    const target = { name: '', ns: ns as string | undefined };
    const read = request.method === 'GET' || request.method === 'HEAD';
    switch (ep.kind) {
      case 'base':
        if (!read) throw new UnsupportedError(`${request.method} is not supported on /v2/`);
        reply.type('application/json').send({});
        return;
      case 'catalog':
        if (request.method !== 'GET') throw new UnsupportedError(`${request.method} is not supported on the catalog`);
        return catalog(opts.registry, opts.maxPageEntries, request, reply);
      case 'tags':
        if (request.method !== 'GET') throw new UnsupportedError(`${request.method} is not supported on tags/list`);
        return listTags(opts.registry, { ...target, name: ep.name }, opts.maxPageEntries, request, reply);
      case 'manifest':
        if (!read) throw new UnsupportedError(`${request.method} of manifests is not supported by this registry`);
        return getManifest(opts.registry, { ...target, name: ep.name }, ep.reference, request, reply);
      case 'blob':
        if (!read) throw new UnsupportedError(`${request.method} of blobs is not supported by this registry`);
        return getBlob(opts.registry, { ...target, name: ep.name }, ep.digest, request, reply);
      case 'upload':
        throw new UnsupportedError('pushing is not enabled on this registry');
      case 'referrers':
        throw new UnsupportedError('the referrers API is not enabled on this registry');
      case 'unknown':
        reply.code(404).type('application/json; charset=utf-8').send({
          errors: [{ code: 'NOT_FOUND', message: `no such endpoint: ${request.url.split('?')[0]}` }],
        });
        return;
    }
  };

  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2', handler: v2 });
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2/*', handler: v2 });
  return app;
}
