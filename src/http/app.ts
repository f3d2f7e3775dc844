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
import type { Registry, ResolvedName } from '../mirror/registry.js';
import { DeniedError, NameInvalidError, UnsupportedError } from '../oci/errors.js';
import { REGISTRY_HOST } from '../oci/reference.js';
import { watchBodyRate, type BodyRateOptions } from './body-rate.js';
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
    /** Set by the v2 gate once it passed the request: the endpoint and the repository it resolved to. */
    v2?: { ep: V2Endpoint; repository?: ResolvedName };
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
  /** The floor under request body rates (http.minBodyRate); absent: none. */
  bodyRate?: BodyRateOptions;
}

export interface Readiness {
  ready: boolean;
  store: string;
  upstreams: Record<string, string>;
}

/**
 * GET /metrics on an app (the main one, or a separate listener's). `gate` runs first: on the
 * registry port it asks for a login when logins are configured.
 */
export function addMetricsRoute(app: FastifyInstance, metrics: Metrics, gate?: (request: FastifyRequest) => Promise<void>): void {
  app.get('/metrics', async (request, reply) => {
    await gate?.(request);
    reply.header('content-type', metrics.contentType()).header('cache-control', 'no-store');
    return metrics.text();
  });
}

/**
 * /readyz for anyone who can reach the registry port: ready or not, and each upstream's state in
 * one word. Addresses and error text (which name internal hosts) only for logged-in users and on
 * metrics.listen.
 */
export function redactReadiness(r: Readiness): Readiness {
  const word = (v: string) => v.split(':')[0] as string;
  return { ready: r.ready, store: word(r.store), upstreams: Object.fromEntries(Object.entries(r.upstreams).map(([k, v]) => [k, word(v)])) };
}

/** GET /readyz on an app; `full` decides per request whether details are shown. */
export function addReadinessRoute(app: FastifyInstance, readiness: (() => Promise<Readiness>) | undefined, full: (request: FastifyRequest) => Promise<boolean>): void {
  app.get('/readyz', async (request, reply) => {
    request.endpoint = 'health';
    const r: Readiness = readiness ? await readiness() : { ready: true, store: 'writable', upstreams: {} };
    // An unreachable upstream does not fail readiness: a disconnected site serves by design.
    reply.code(r.ready ? 200 : 503).header('cache-control', 'no-store');
    return (await full(request)) ? r : redactReadiness(r);
  });
}

function actionOf(method: string): Action {
  if (method === 'GET' || method === 'HEAD') return 'pull';
  return method === 'DELETE' ? 'delete' : 'push';
}

/** The path and query of a request target, also when a client sent it in absolute form (RFC 9112 §3.2.2). */
export function originForm(url: string): string {
  if (url.startsWith('/')) return url;
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(.*)$/i.exec(url);
  return m?.[1] ? m[1] : '/';
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

  if (opts.bodyRate) watchBodyRate(app, opts.bodyRate);
  app.decorateRequest('cacheOutcome', undefined);
  app.decorateRequest('endpoint', undefined);
  app.decorateRequest('user', undefined);
  app.decorateRequest('v2', undefined);

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
  /** The user a request logs in (undefined without logins or without credentials); a wrong login throws 401. */
  const loggedIn = async (request: FastifyRequest): Promise<string | undefined> => {
    const access = currentAccess();
    return access ? access.authenticate(request.headers.authorization, request.ip) : undefined;
  };
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

  /**
   * The v2 gate, a hook of the v2 routes themselves (so a request line in absolute form meets it
   * too), run before the body is read so a refused upload never costs its bytes: logs the client
   * in, resolves the repository the request names once (router.ts), and judges access on that
   * stored name. The handler refuses any request the gate did not pass.
   */
  const gate = async (request: FastifyRequest): Promise<void> => {
    const access = currentAccess();
    const user = await loggedIn(request);
    request.user = user;
    const mayTry = !access || user !== undefined || access.anonymousRead;
    let ep: V2Endpoint;
    try {
      ep = parseV2Path(originForm(request.url));
    } catch (e) {
      if (!mayTry && access) throw access.challenge();
      throw e;
    }
    request.endpoint = ep.kind;
    // /v2/ answers 401 without a login even when anonymous pulls are allowed: `docker login`
    // reads a 200 there as "no login needed" and would never check the password.
    if (ep.kind === 'base' || ep.kind === 'unknown') {
      if (access && user === undefined) throw access.challenge();
      request.v2 = { ep };
      return;
    }
    if (!mayTry && access) throw access.challenge();
    if (ep.kind === 'catalog') {
      request.v2 = { ep };
      return;
    }
    const ns = (request.query as { ns?: unknown }).ns;
    if (ns !== undefined && (typeof ns !== 'string' || ns.length > 255 || !REGISTRY_HOST.test(ns.toLowerCase()))) {
      throw new NameInvalidError('ns must be a single registry host name');
    }
    const action = actionOf(request.method);
    const repository = await opts.registry.resolve({ name: ep.name, ns: ns as string | undefined }, { create: action === 'push' });
    if (access && !access.allowed(user, repository.storeName, action)) {
      if (user === undefined) throw access.challenge();
      const spelled = repository.storeName === ep.name ? '' : ` (requested as ${ep.name}${ns ? ` with ns=${String(ns)}` : ''})`;
      throw new DeniedError(`user ${user} may not ${action} ${repository.storeName}${spelled}`);
    }
    request.v2 = { ep, repository };
  };

  const v2 = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
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
        return getReferrers(push(), named(), ep.digest, request, reply);
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
  addReadinessRoute(app, opts.readiness, async (request) => (await loggedIn(request)) !== undefined);
  if (metrics && !opts.metricsElsewhere) {
    addMetricsRoute(app, metrics, async (request) => {
      const access = currentAccess();
      if (access && (await loggedIn(request)) === undefined) throw access.challenge('log in to read the metrics (or serve them on metrics.listen)');
    });
  }

  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2', onRequest: gate, handler: v2 });
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2/*', onRequest: gate, handler: v2 });
  return app;
}
