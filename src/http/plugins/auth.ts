/**
 * Logins and access decisions, under the rules in force (a reload may replace them), for the
 * other plugins: decorates the instance with `auth` (the v2 gate, logins for the health routes)
 * and requests with what the gate found.
 */
import { parse as parseCookies } from 'cookie';
import type { FastifyRequest } from 'fastify';
import type { AccessControl, Action } from '../../auth/access-control.js';
import { csrfMatches, type Session, type Sessions } from '../../auth/sessions.js';
import type { ImageSource, ResolvedName } from '../../mirror/image-source.js';
import { DeniedError, NameInvalidError, UnauthorizedError } from '../../oci/errors.js';
import { REGISTRY_HOST } from '../../oci/reference.js';
import { originForm } from '../origin-form.js';
import { parseV2Path, type V2Endpoint } from '../v2-path.js';
import { unencapsulated } from './unencapsulated.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The logged-in user (auth.htpasswd), for the log line. */
    user?: string;
    /** Set by the v2 gate once it passed the request: the endpoint and the repository it resolved to. */
    v2?: { ep: V2Endpoint; repository?: ResolvedName };
    /** What the request asked for, as far as the gate got (also when it refused): for the audit log. */
    asked?: { ep: V2Endpoint; repository?: ResolvedName };
    /** The console session that logged the request in (identify), if a cookie did. */
    session?: Session;
  }
  interface FastifyInstance {
    /** Logins and the v2 gate, from plugins/auth.ts. */
    auth: Auth;
  }
}

export interface Auth {
  /** The user a request logs in (undefined without logins or without credentials); a wrong login throws 401. */
  loggedIn(request: FastifyRequest): Promise<string | undefined>;
  /** Throws the login challenge with `message` when logins are configured and the request has none. */
  requireLogin(request: FastifyRequest, message: string): Promise<void>;
  /** Whether the request's user may pull the stored repository `name`. */
  mayPull(request: FastifyRequest, name: string): boolean;
  /** Whether the request's user may push to the stored repository `name`. */
  mayPush(request: FastifyRequest, name: string): boolean;
  /** Whether the request's user may delete in the stored repository `name`. */
  mayDelete(request: FastifyRequest, name: string): boolean;
  /** Whether the request's user may run store-wide jobs (gc, verify, the prefetch list): delete on "**". */
  mayAdminister(request: FastifyRequest): boolean;
  /**
   * Logs the request in for a route outside v2 (sets request.user): HTTP Basic, or else the
   * console's session cookie, whose changes (any method but GET and HEAD) must carry the
   * session's CSRF token and come from this origin. Without a login, throws 401 with `message`
   * unless `anonymousRead` and auth.anonymous allows reading.
   */
  identify(request: FastifyRequest, message: string, anonymousRead: boolean): Promise<void>;
  /**
   * The v2 gate, a hook of the v2 routes themselves (so a request line in absolute form meets it
   * too), run before the body is read so a refused upload never costs its bytes: logs the client
   * in, resolves the repository the request names once (router.ts), and judges access on that
   * stored name. The handler refuses any request the gate did not pass.
   */
  v2Gate(request: FastifyRequest): Promise<void>;
}

export interface AuthOptions {
  registry: ImageSource;
  /** Logins and permissions (read per request); none: every client may do everything. */
  access?: () => AccessControl | undefined;
  /** The console's sessions and the name of their cookie (ui.enabled). */
  sessions?: { store: Sessions; cookie: string };
}

/** The header a console page sends its session's CSRF token in. */
export const CSRF_HEADER = 'x-airlock-csrf';

/**
 * A change a browser sends must come from this very origin, whatever logs it in: a browser adds
 * Basic credentials it remembers for this host to a cross-site page's request as well, and with
 * no logins configured a page on the operator's screen could run jobs on an internal mirror.
 * Browsers send Origin (and Sec-Fetch-Site) on such requests; scripts (curl) send neither.
 */
function checkOrigin(request: FastifyRequest): void {
  // The browser's own word first: it knows the page's origin, whatever proxy sits in between.
  if (refuseCrossSite(request)) return;
  const origin = request.headers.origin;
  if (origin === undefined) return;
  let host: string | undefined;
  try {
    host = new URL(origin).host.toLowerCase();
  } catch {
    host = undefined;
  }
  // The host only: behind a proxy that ends TLS, the scheme the browser used is not this server's.
  if (host === undefined || host !== (request.headers.host ?? '').toLowerCase()) {
    throw new DeniedError(`a change from another origin (${origin.slice(0, 200)}) is refused`);
  }
}

/**
 * Refuses a request a browser says another page sent (Sec-Fetch-Site other than same-origin or
 * none); true when the header settled it, false when it was not sent.
 */
function refuseCrossSite(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (typeof site !== 'string') return false;
  if (site === 'same-origin' || site === 'none') return true;
  throw new DeniedError(`a change from a ${site.slice(0, 20)} page is refused`);
}

/**
 * A change made with the session cookie must also prove it comes from the console's own pages:
 * the CSRF token (a cross-site page cannot read it), as SameSite does not tell one port of a
 * host from another.
 */
function checkCsrf(request: FastifyRequest, session: Session): void {
  const sent = request.headers[CSRF_HEADER];
  if (!csrfMatches(session, typeof sent === 'string' ? sent : undefined)) throw new DeniedError(`a change needs the session's ${CSRF_HEADER} header (reload the console)`);
}

function actionOf(method: string): Action {
  if (method === 'GET' || method === 'HEAD') return 'pull';
  return method === 'DELETE' ? 'delete' : 'push';
}

export const auth = unencapsulated<AuthOptions>(function auth(app, { registry, access: accessOption, sessions }, next) {
  const currentAccess = accessOption ?? (() => undefined);
  const loggedIn = async (request: FastifyRequest): Promise<string | undefined> => {
    const access = currentAccess();
    return access ? access.authenticate(request.headers.authorization, request.ip) : undefined;
  };

  const v2Gate = async (request: FastifyRequest): Promise<void> => {
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
    request.asked = { ep };
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
    // A cross-site page may send a simple POST (a blob upload, a mount) with Basic credentials the
    // browser remembers; registry clients never send Sec-Fetch-Site.
    if (action !== 'pull') refuseCrossSite(request);
    const repository = await registry.resolve({ name: ep.name, ns: ns as string | undefined }, { create: action === 'push' });
    request.asked = { ep, repository };
    if (access && !access.allowed(user, repository.storeName, action)) {
      if (user === undefined) throw access.challenge();
      const spelled = repository.storeName === ep.name ? '' : ` (requested as ${ep.name}${ns ? ` with ns=${String(ns)}` : ''})`;
      throw new DeniedError(`user ${user} may not ${action} ${repository.storeName}${spelled}`);
    }
    request.v2 = { ep, repository };
  };

  const decorated: Auth = {
    loggedIn,
    requireLogin: async (request, message) => {
      const access = currentAccess();
      if (access && (await loggedIn(request)) === undefined) throw access.challenge(message);
    },
    mayPull: (request, name) => {
      const access = currentAccess();
      return !access || access.allowed(request.user, name, 'pull');
    },
    mayPush: (request, name) => {
      const access = currentAccess();
      return !access || access.allowed(request.user, name, 'push');
    },
    mayDelete: (request, name) => {
      const access = currentAccess();
      return !access || access.allowed(request.user, name, 'delete');
    },
    mayAdminister: (request) => {
      const access = currentAccess();
      return !access || access.administers(request.user);
    },
    identify: async (request, message, anonymousRead) => {
      const change = request.method !== 'GET' && request.method !== 'HEAD';
      if (change) checkOrigin(request);
      const access = currentAccess();
      if (!access) return;
      if (request.headers.authorization) request.user = await loggedIn(request);
      else if (sessions) {
        const id = parseCookies(request.headers.cookie ?? '')[sessions.cookie];
        const session = sessions.store.get(id, (u) => access.stamp(u));
        if (session) {
          if (change) checkCsrf(request, session);
          request.user = session.user;
          request.session = session;
        }
      }
      // No WWW-Authenticate: a browser would answer a console page's 401 with its own login box.
      if (request.user === undefined && !(anonymousRead && access.anonymousRead)) throw new UnauthorizedError(message);
    },
    v2Gate,
  };
  app.decorateRequest('user', undefined);
  app.decorateRequest('v2', undefined);
  app.decorateRequest('asked', undefined);
  app.decorateRequest('session', undefined);
  app.decorate('auth', decorated);
  next();
});
