/**
 * Builds the fastify application for the registry API. It never listens: compose.ts (or a test)
 * decides where. All /v2/ traffic goes through one wildcard route and v2-path.ts, because
 * repository names hold any number of '/'-separated components and must be matched on the raw,
 * still-encoded path.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AccessControl, Action } from '../auth/access-control.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PushService } from '../mirror/push-service.js';
import type { Registry } from '../mirror/registry.js';
import { DeniedError, NameInvalidError, UnsupportedError } from '../oci/errors.js';
import { REGISTRY_HOST } from '../oci/reference.js';
import { sendError } from './error-handler.js';
import { noSchemaCompilers } from './no-schemas.js';
import { deleteBlob, getBlob } from './routes/blobs.js';
import { catalog, listTags } from './routes/listings.js';
import { deleteManifest, getManifest, getReferrers, putManifest } from './routes/manifests.js';
import { upload } from './routes/uploads.js';
import { parseV2Path, type V2Endpoint } from './v2-path.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** hit / miss / stale …, set by handlers for the request log line. */
    cacheOutcome?: string;
    /** Which endpoint served the request, for the log line and metrics. */
    endpoint?: V2Endpoint['kind'] | 'health';
    /** The logged-in user (auth.htpasswd), for the log line. */
    user?: string;
  }
}

export interface AppOptions {
  registry: Registry;
  logger: Logger;
  /** Most entries a catalog or tags page may hold (and the default page size). */
  maxPageEntries: number;
  /** Largest request body accepted (manifest pushes). */
  bodyLimit?: number;
  /** The write side: uploads, manifest pushes, deletes, referrers. */
  push?: PushService;
  /** Logins and permissions (read per request: a reload may replace them); none: every client may do everything. */
  access?: () => AccessControl | undefined;
  /** HTTPS with these PEM files (compose.ts replaces them on SIGHUP). */
  https?: { cert: Buffer; key: Buffer };
  /** Counted per request; served at /metrics unless `metricsElsewhere` (metrics.listen). */
  metrics?: Metrics;
  metricsElsewhere?: boolean;
  /** /readyz: whether the store is writable, and each upstream's reachability. */
  readiness?: () => Promise<Readiness>;
}

export interface Readiness {
  ready: boolean;
  store: string;
  upstreams: Record<string, string>;
}

/** GET /metrics on an app (the main one, or a separate listener's). */
export function addMetricsRoute(app: FastifyInstance, metrics: Metrics): void {
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.contentType()).header('cache-control', 'no-store');
    return metrics.text();
  });
}

function actionOf(method: string): Action {
  if (method === 'GET' || method === 'HEAD') return 'pull';
  return method === 'DELETE' ? 'delete' : 'push';
}

function isUploadUrl(url: string): boolean {
  const q = url.indexOf('?');
  return (q < 0 ? url : url.slice(0, q)).includes('/blobs/uploads');
}

const API_VERSION = 'registry/2.0';

export function buildApp(opts: AppOptions): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? 4 * 2 ** 20;
  const app = Fastify({
    ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key } } : {}),
    loggerInstance: opts.logger as FastifyBaseLogger,
    schemaController: noSchemaCompilers,
    // One line per request is written in onResponse below, with the fields operators need.
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    // Repository names may be 255 characters and references 135: the whole path is one wildcard.
    routerOptions: { maxParamLength: 4096 },
    bodyLimit,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Requests that the router itself rejects (bad percent-encoding, …) still get OCI error JSON.
    frameworkErrors: (err, request, reply) => sendError(err, request, reply),
    // And so do requests the HTTP parser cannot read at all (bytes not allowed in a URL, …).
    clientErrorHandler: (err, socket) => {
      if (!socket.writable) return socket.destroy();
      const code = (err as NodeJS.ErrnoException).code;
      const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = JSON.stringify({ errors: [{ code: code === 'HPE_INVALID_URL' || code === 'HPE_INVALID_CHARACTER' ? 'NAME_INVALID' : 'UNSUPPORTED', message: `malformed HTTP request (${code ?? 'parse error'})` }] });
      socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
  });

  // Bodies are bytes: a manifest must be stored exactly as sent, never parsed and re-serialized.
  // Blob uploads stay streams (handed to the upload as they arrive, any size); everything else
  // is read into memory up to bodyLimit (http.maxManifestSize).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    if (isUploadUrl(request.url)) {
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

  app.decorateRequest('cacheOutcome', undefined);
  app.decorateRequest('endpoint', undefined);
  app.decorateRequest('user', undefined);

  const metrics = opts.metrics;
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('docker-distribution-api-version', API_VERSION);
    if (metrics) {
      // Counted when the connection is done with the response, whether it finished or the
      // client hung up once it had its bytes (onResponse misses the latter).
      reply.raw.once('close', () => {
        const endpoint = request.endpoint ?? 'other';
        metrics.requests.inc({ endpoint, method: request.method, status: String(reply.statusCode) });
        const len = reply.getHeader('content-length');
        if (request.method !== 'HEAD' && reply.statusCode !== 304) metrics.responseBytes.inc({ endpoint }, Number(len ?? 0));
      });
    }
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
        user: request.user,
      },
      'request',
    );
    done();
  });

  const currentAccess = opts.access ?? (() => undefined);
  {
    // Before the body is read: a refused upload never costs its bytes.
    app.addHook('onRequest', async (request) => {
      const access = currentAccess();
      if (!access || !request.url.startsWith('/v2')) return;
      const user = await access.authenticate(request.headers.authorization, request.ip);
      request.user = user;
      let ep: V2Endpoint;
      try {
        ep = parseV2Path(request.url);
      } catch {
        ep = { kind: 'unknown' };
      }
      // /v2/ answers 401 without a login even when anonymous pulls are allowed: `docker login`
      // reads a 200 there as "no login needed" and would never check the password.
      if (ep.kind === 'base' || ep.kind === 'unknown') {
        if (user === undefined) throw access.challenge();
        return;
      }
      const action = actionOf(request.method);
      if (ep.kind === 'catalog') {
        if (user === undefined && !access.anonymousRead) throw access.challenge();
        return;
      }
      if (!access.allowed(user, ep.name, action)) {
        if (user === undefined) throw access.challenge();
        throw new DeniedError(`user ${user} may not ${action} ${ep.name}`);
      }
    });
  }
  const canPull = (request: FastifyRequest) => (name: string) => {
    const access = currentAccess();
    return !access || access.allowed(request.user, name, 'pull');
  };
  const push = (): PushService => {
    if (!opts.push) throw new UnsupportedError('pushing is not enabled on this registry');
    return opts.push;
  };

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
        if (read) return getManifest(opts.registry, { ...target, name: ep.name }, ep.reference, request, reply);
        if (request.method === 'PUT') return putManifest(push(), ep.name, ep.reference, request, reply);
        if (request.method === 'DELETE') return deleteManifest(push(), opts.registry, { ...target, name: ep.name }, ep.reference, reply);
        throw new UnsupportedError(`${request.method} of manifests is not supported`);
      case 'blob':
        if (read) return getBlob(opts.registry, { ...target, name: ep.name }, ep.digest, request, reply);
        if (request.method === 'DELETE') return deleteBlob(push(), opts.registry, { ...target, name: ep.name }, ep.digest, reply);
        throw new UnsupportedError(`${request.method} of blobs is not supported; upload through /v2/${ep.name}/blobs/uploads/`);
      case 'upload':
        return upload(push(), opts.registry, ep.name, ep.session, canPull(request), request, reply);
      case 'referrers':
        if (!read) throw new UnsupportedError(`${request.method} is not supported on referrers`);
        return getReferrers(push(), opts.registry, { ...target, name: ep.name }, ep.digest, request, reply);
      case 'unknown':
        reply.code(404).type('application/json; charset=utf-8').send({
          errors: [{ code: 'NOT_FOUND', message: `no such endpoint: ${request.url.split('?')[0]}` }],
        });
        return;
    }
  };

  // Liveness and readiness for load balancers, Docker's HEALTHCHECK and Kubernetes probes.
  app.get('/healthz', async (request, reply) => {
    request.endpoint = 'health';
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });
  app.get('/readyz', async (request, reply) => {
    request.endpoint = 'health';
    const r: Readiness = opts.readiness ? await opts.readiness() : { ready: true, store: 'writable', upstreams: {} };
    // An unreachable upstream does not fail readiness: a disconnected site serves by design.
    reply.code(r.ready ? 200 : 503).header('cache-control', 'no-store');
    return r;
  });
  if (metrics && !opts.metricsElsewhere) addMetricsRoute(app, metrics);

  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2', handler: v2 });
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2/*', handler: v2 });
  return app;
}
