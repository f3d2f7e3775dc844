/**
 * Builds the fastify application for the registry API. It never listens: compose.ts (or a test)
 * decides where. The instance and its server-wide answers (errors, unknown routes, requests the
 * router or the HTTP parser reject) are set up here; everything else is a plugin, registered in
 * the order below.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AccessControl } from '../auth/access-control.js';
import type { AuditLog } from '../logging/audit-log.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PushService } from '../mirror/push-service.js';
import type { ImageSource } from '../mirror/image-source.js';
import type { BodyRateOptions } from './body-rate.js';
import { sendError } from './error-handler.js';
import { noSchemaCompilers } from './no-schemas.js';
import type { Sessions } from '../auth/sessions.js';
import type { ArchiveService } from './plugins/archives.js';
import type { ConsoleService } from './plugins/ui-api.js';
import { audit } from './plugins/audit.js';
import { auth } from './plugins/auth.js';
import { bodyParsing } from './plugins/body-parsing.js';
import { health } from './plugins/health.js';
import { requestLog } from './plugins/request-log.js';
import { SESSION_COOKIE, ui } from './plugins/ui.js';
import { v2 } from './plugins/v2.js';
import type { Readiness } from './routes/readiness.js';

// Kept importable from here for compose.ts and tests.
export { originForm } from './origin-form.js';
export { addMetricsRoute } from './routes/metrics.js';
export { addReadinessRoute, redactReadiness, type Readiness } from './routes/readiness.js';

export interface AppOptions {
  registry: ImageSource;
  logger: Logger;
  /** Most entries a catalog or tags page may hold (and the default page size). */
  maxPageEntries: number;
  /** Largest request body accepted (manifest pushes). */
  bodyLimit?: number;
  /** The write side: uploads, manifest pushes, deletes. */
  push?: PushService;
  /** Set when the store is read-only: the message every push and delete is refused with (405 UNSUPPORTED). */
  readOnly?: string;
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
  /** audit.file: pulls, pushes and deletes, written before their responses end. */
  audit?: AuditLog;
  /** The web console at ui.path (plugins/ui.ts), with its API and the archives; absent: ui.enabled false. */
  ui?: {
    path: string;
    sessions: Sessions;
    version: string;
    /** storage.delete.enabled */
    deletes: boolean;
    archives: ArchiveService;
    /** The console's reads and actions (plugins/ui-api.ts). */
    service?: ConsoleService;
    /** The default registry, for image names without one. */
    defaultRegistry: string;
  };
}

export function buildApp(opts: AppOptions): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? 4 * 2 ** 20;
  const app = Fastify({
    ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key } } : {}),
    loggerInstance: opts.logger as FastifyBaseLogger,
    schemaController: noSchemaCompilers,
    // One line per request is written by plugins/request-log.ts, with the fields operators need.
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

  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).type('application/json; charset=utf-8').send({
      errors: [{ code: 'NOT_FOUND', message: `no such endpoint: ${request.method} ${request.url.split('?')[0]}` }],
    });
  });

  // Hooks, parser and decorators of the unencapsulated plugins apply to every route. Their order
  // is the hooks' order: the body rate floor's onRequest runs before the request log's.
  app.register(bodyParsing, { bodyLimit, bodyRate: opts.bodyRate, archivePath: opts.ui ? `${opts.ui.path}/api/archive` : undefined });
  app.register(requestLog, { metrics: opts.metrics });
  if (opts.audit) app.register(audit, { audit: opts.audit });
  app.register(auth, { registry: opts.registry, access: opts.access, sessions: opts.ui ? { store: opts.ui.sessions, cookie: SESSION_COOKIE } : undefined });
  // Encapsulated: routes only, on the auth plugin's decorations.
  app.register(health, { readiness: opts.readiness, metrics: opts.metricsElsewhere ? undefined : opts.metrics });
  app.register(v2, { registry: opts.registry, maxPageEntries: opts.maxPageEntries, push: opts.push, readOnly: opts.readOnly });
  if (opts.ui) {
    const u = opts.ui;
    app.register(ui, {
      path: u.path,
      sessions: u.sessions,
      access: opts.access ?? (() => undefined),
      secure: opts.https !== undefined,
      version: u.version,
      deletes: u.deletes && opts.readOnly === undefined,
      readOnly: opts.readOnly,
      logger: opts.logger,
      service: u.service,
      archives: { registry: opts.registry, archives: u.archives, defaultRegistry: u.defaultRegistry, readOnly: opts.readOnly, audit: opts.audit },
    });
  }
  return app;
}
