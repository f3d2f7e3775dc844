/**
 * The web console at ui.path: its built files (dist/ui, held in memory: a few small hashed
 * assets), index.html for every page route, the login, logout and session endpoints, and the
 * security headers of everything under the path. Its JSON API (plugins/ui-api.ts) and the
 * archives (plugins/archives.ts) are registered inside, so the headers cover them too.
 * Logins and the CSRF check are plugins/auth.ts's `identify`.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { AccessControl } from '../../auth/access-control.js';
import type { Sessions } from '../../auth/sessions.js';
import type { Logger } from '../../logging/logger.js';
import { UnauthorizedError, UnsupportedError } from '../../oci/errors.js';
import { archives, type ArchivesOptions } from './archives.js';
import { uiApi, type ConsoleService } from './ui-api.js';

/** The package's root, from src/http/plugins or dist/http/plugins alike. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const UI_ASSETS = path.join(ROOT, 'dist', 'ui');
export const SESSION_COOKIE = 'airlock_session';

/** Strict: the console's own files only; no inline script or style, no framing. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
};

interface Asset {
  body: Buffer;
  gz?: Buffer;
  type: string;
  etag: string;
}

export interface UiOptions {
  /** ui.path: /ui */
  path: string;
  sessions: Sessions;
  access: () => AccessControl | undefined;
  /** The cookie gets Secure (the console is served over HTTPS). */
  secure: boolean;
  version: string;
  /** storage.delete.enabled, and the store writable. */
  deletes: boolean;
  readOnly?: string;
  archives?: ArchivesOptions;
  /** The console's reads and actions (plugins/ui-api.ts); absent: only session, login and archives. */
  service?: ConsoleService;
  logger: Logger;
  /** Where the built files are (tests); default dist/ui of the package. */
  assetsDir?: string;
}

/** The built files, read once at start; index.html with its base set to the configured path. */
function loadAssets(dir: string, base: string, log: Logger): { assets: Map<string, Asset>; index?: Asset } {
  const assets = new Map<string, Asset>();
  const make = (body: Buffer, type: string): Asset => ({
    body,
    type,
    gz: body.length > 1024 ? gzipSync(body, { level: 9 }) : undefined,
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
  });
  let html: Buffer;
  try {
    html = readFileSync(path.join(dir, 'index.html'));
  } catch {
    log.warn({ dir }, 'the console\'s files are not built (npm run build): /ui answers 503 until they are');
    return { assets };
  }
  const assetDir = path.join(dir, 'assets');
  let names: string[] = [];
  try {
    names = readdirSync(assetDir).filter((n) => !n.endsWith('.gz') && statSync(path.join(assetDir, n)).isFile());
  } catch {
    // No assets folder: index.html alone.
  }
  for (const name of names) assets.set(name, make(readFileSync(path.join(assetDir, name)), TYPES[path.extname(name)] ?? 'application/octet-stream'));
  const index = make(Buffer.from(html.toString('utf8').replace('<base href="/ui/">', `<base href="${base}/">`)), TYPES['.html']!);
  return { assets, index };
}

function sendAsset(request: FastifyRequest, reply: FastifyReply, a: Asset, cache: string): FastifyReply {
  reply.header('content-type', a.type).header('cache-control', cache).header('etag', a.etag).header('vary', 'accept-encoding');
  if (request.headers['if-none-match'] === a.etag) return reply.code(304).send();
  if (a.gz && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) return reply.header('content-encoding', 'gzip').send(a.gz);
  return reply.send(a.body);
}

export const ui: FastifyPluginCallback<UiOptions> = function ui(app, opts, next) {
  const base = opts.path;
  const { assets, index } = loadAssets(opts.assetsDir ?? UI_ASSETS, base, opts.logger);
  const cookie = (value: string, maxAge?: number) =>
    serializeCookie(SESSION_COOKIE, value, { httpOnly: true, sameSite: 'strict', secure: opts.secure, path: base, ...(maxAge !== undefined ? { maxAge } : {}) });

  app.addHook('onRequest', async (request) => {
    request.endpoint = 'ui';
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(SECURITY_HEADERS);
    return payload;
  });

  app.get(base, async (_request, reply) => reply.redirect(`${base}/`, 308));

  app.get(`${base}/assets/:file`, async (request, reply) => {
    const a = assets.get((request.params as { file: string }).file);
    if (!a) return reply.code(404).type('text/plain; charset=utf-8').send('no such file');
    // Hashed names: a new build has new names, so these never change.
    return sendAsset(request, reply, a, 'public, max-age=31536000, immutable');
  });

  app.get(`${base}/api/session`, async (request) => {
    const access = opts.access();
    await app.auth.identify(request, 'log in', true).catch((e: unknown) => {
      if (!(e instanceof UnauthorizedError)) throw e;
    });
    const user = request.user ?? null;
    return {
      user,
      authEnabled: access !== undefined,
      anonymousRead: access?.anonymousRead ?? true,
      csrf: request.session?.csrf ?? null,
      canDelete: opts.deletes && (access === undefined || access.deletesSomewhere(request.user)),
      canAdminister: app.auth.mayAdminister(request),
      readOnly: opts.readOnly !== undefined,
      version: opts.version,
      registry: request.headers.host ?? '',
    };
  });

  app.post(`${base}/api/login`, async (request, reply) => {
    const access = opts.access();
    if (!access) throw new UnsupportedError('this registry has no logins (auth.htpasswd is not set)');
    // A JSON body only: a cross-site form cannot send one without a CORS preflight (login CSRF).
    if (!String(request.headers['content-type'] ?? '').startsWith('application/json')) {
      throw Object.assign(new Error('send {"user","password"} as Content-Type: application/json'), { statusCode: 415 });
    }
    const body = parseLogin(request.body);
    const header = `Basic ${Buffer.from(`${body.user}:${body.password}`).toString('base64')}`;
    // The registry's own check: the same throttling, the same failed-login audit line.
    // Its 401 asks for Basic credentials; a page's login must not raise the browser's own box.
    const user = await access.authenticate(header, request.ip).catch((e: unknown) => {
      throw e instanceof UnauthorizedError ? new UnauthorizedError(e.message) : e;
    });
    const stamp = user === undefined ? undefined : access.stamp(user);
    if (user === undefined || stamp === undefined) throw new UnauthorizedError('wrong user name or password');
    const { id, session } = opts.sessions.create(user, stamp);
    reply.header('set-cookie', cookie(id));
    reply.header('cache-control', 'no-store');
    return { user, csrf: session.csrf };
  });

  app.post(`${base}/api/logout`, async (request, reply) => {
    await app.auth.identify(request, 'not logged in', false);
    opts.sessions.delete(parseCookies(request.headers.cookie ?? '')[SESSION_COOKIE]);
    reply.header('set-cookie', cookie('', 0));
    return reply.code(204).send();
  });

  if (opts.archives) app.register(archives, { ...opts.archives, prefix: `${base}/api` });
  if (opts.service) app.register(uiApi, { service: opts.service, readOnly: opts.readOnly, prefix: `${base}/api` });

  // Every other page of the console is index.html: the front-end routes it.
  app.get(`${base}/*`, async (request, reply) => {
    if (request.url.startsWith(`${base}/api/`)) {
      return reply.code(404).type('application/json; charset=utf-8').send({ errors: [{ code: 'NOT_FOUND', message: `no such endpoint: GET ${request.url.split('?')[0]}` }] });
    }
    if (!index) return reply.code(503).type('text/plain; charset=utf-8').send('the console is not built: run npm run build');
    return sendAsset(request, reply, index, 'no-cache');
  });
  next();
};

function parseLogin(body: unknown): { user: string; password: string } {
  let v: unknown = body;
  if (Buffer.isBuffer(body)) {
    try {
      v = JSON.parse(body.toString('utf8'));
    } catch {
      v = undefined;
    }
  }
  const o = v as { user?: unknown; password?: unknown } | undefined;
  if (!o || typeof o.user !== 'string' || typeof o.password !== 'string' || o.user.length === 0 || o.user.length > 256 || o.password.length > 1024 || o.user.includes(':')) {
    throw Object.assign(new Error('expected {"user": "...", "password": "..."}'), { statusCode: 400 });
  }
  return { user: o.user, password: o.password };
}
