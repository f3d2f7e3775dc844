/**
 * The client for one upstream registry: a keep-alive pool, token auth, redirects of blob
 * requests followed server-side without Authorization on a cross-origin hop (S3 and CDNs reject
 * a second auth mechanism) and within redirect-policy.ts's rules, bounded retries with backoff on
 * connection errors, 5xx and 429 (honouring Retry-After), rate-limit headers read (rate-limit.ts:
 * under rateLimitReserve the mirror stops revalidating tags until the window resets), and a
 * circuit breaker so that a dead upstream fails fast.
 *
 * What is trusted from where: a 401 challenge only from the upstream's own origin (a CDN's 401 is
 * that request's failure); a token realm only as realm-policy.ts allows. The breaker counts only
 * what says the upstream as a whole is down: connection failures and timeouts, and its /v2/
 * failing. A 5xx for one request is that request's failure (502), so that a client asking for
 * something the upstream chokes on cannot switch the upstream off for every other client.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, Pool, type Dispatcher } from '../runtime/undici.js';
import type { Logger } from '../logging/logger.js';
import {
  BlobUnknownError,
  DeniedError,
  ManifestUnknownError,
  MirrorError,
  NameUnknownError,
  TooManyRequestsError,
  UpstreamBadResponseError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '../oci/errors.js';
import { MANIFEST_MEDIA_TYPES } from '../oci/media-types.js';
import { Authenticator, TokenError } from './auth.js';
import { parseRateLimit, parseRetryAfter, type RateLimit } from './rate-limit.js';
import { RedirectPolicy, RedirectRefusedError } from './redirect-policy.js';
import { trustedContext } from './trusted-roots.js';

export interface UpstreamClientConfig {
  /** The registry host clients know it by (docker.io, ghcr.io): the key in mirror.yml. */
  name: string;
  url: string;
  username?: string;
  password?: string;
  /** PEM text of CAs to trust besides the default roots. */
  ca?: string;
  /** Hosts (host or host:port) besides the upstream's own that may receive its credentials as a token realm. */
  tokenHosts?: readonly string[];
  /** Follow blob redirects to loopback, link-local and private addresses even when the upstream is not on one. */
  allowPrivateRedirects?: boolean;
  insecure: boolean;
  concurrency: number;
  connectTimeout: number;
  readTimeout: number;
  retries: number;
  /**
   * Under this many requests left in the upstream's rate-limit window, tags are served from the
   * store without revalidation until the window resets (0: never). Default 10.
   */
  rateLimitReserve?: number;
}

export { parseRetryAfter, type RateLimit } from './rate-limit.js';

export interface UpstreamStats {
  requests: number;
  errors: number;
  bytes: number;
  tokenRequests: number;
}

/** What the upstream said about a manifest, without its body. */
export interface ManifestHead {
  digest?: string;
  mediaType?: string;
  size?: number;
}

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
const MAX_REDIRECTS = 5;
/** Longest Retry-After we wait inside one client request; beyond it the client gets a 429. */
const MAX_RETRY_AFTER_MS = 10_000;
const BREAKER_THRESHOLD = 5;
const BREAKER_COOLDOWN_MS = 5_000;

export function scopeFor(repository: string): string {
  return `repository:${repository}:pull`;
}

function isTimeout(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT';
}

export class UpstreamClient {
  readonly name: string;
  readonly origin: string;
  readonly #basePath: string;
  readonly #pool: Pool;
  /** For redirect targets on other origins (CDNs, object stores): resolves names through the redirect policy. */
  readonly #redirects: Agent;
  /** For token realms. */
  readonly #tokens: Agent;
  readonly #auth: Authenticator;
  readonly #policy: RedirectPolicy;
  /** The check of the upstream's /v2/ in flight (one at a time, however many requests failed). */
  #baseCheck: Promise<boolean> | undefined;
  #consecutiveFailures = 0;
  #openUntil = 0;
  /** What the upstream's last response with a ratelimit-remaining header said. */
  rateLimit: RateLimit | undefined;
  readonly stats: UpstreamStats = { requests: 0, errors: 0, bytes: 0, tokenRequests: 0 };
  /** Called once per HTTP exchange with the upstream (status, or 'error'; seconds to headers), for metrics. */
  onExchange?: (status: number | 'error', seconds: number) => void;

  constructor(readonly config: UpstreamClientConfig, private readonly log: Logger) {
    const u = new URL(config.url);
    this.name = config.name;
    this.origin = u.origin;
    this.#basePath = u.pathname.replace(/\/+$/, '');
    const secureContext = trustedContext(config.ca);
    const connect = { timeout: config.connectTimeout, rejectUnauthorized: !config.insecure, ...(secureContext ? { secureContext } : {}) };
    this.#policy = new RedirectPolicy({ upstream: u, allowPrivate: config.allowPrivateRedirects ?? false });
    this.#pool = new Pool(this.origin, { connections: config.concurrency, connect, keepAliveTimeout: 30_000, pipelining: 1 });
    this.#redirects = new Agent({ connections: config.concurrency, connect: { ...connect, lookup: this.#policy.lookup }, keepAliveTimeout: 30_000 });
    this.#tokens = new Agent({ connections: config.concurrency, connect, keepAliveTimeout: 30_000 });
    const creds = config.username && config.password ? { username: config.username, password: config.password } : undefined;
    this.#auth = new Authenticator(this.#tokens, creds, config.readTimeout, { name: config.name, url: u, tokenHosts: config.tokenHosts ?? [] });
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#pool.close(), this.#redirects.close(), this.#tokens.close()]);
  }

  /** Whether the breaker currently considers the upstream down. */
  get available(): boolean {
    return Date.now() >= this.#openUntil;
  }

  #failure(): void {
    this.stats.errors++;
    if (++this.#consecutiveFailures >= BREAKER_THRESHOLD) {
      this.#openUntil = Date.now() + BREAKER_COOLDOWN_MS;
      this.log.warn({ upstream: this.name, cooldownMs: BREAKER_COOLDOWN_MS }, 'upstream unreachable; failing fast for a while');
    }
  }

  #success(): void {
    this.#consecutiveFailures = 0;
    this.#openUntil = 0;
  }

  #readRateLimit(headers: Dispatcher.ResponseData['headers']): void {
    const now = Date.now();
    const retryAfter = parseRetryAfter(headers['retry-after'], now);
    const next = parseRateLimit(headers, now);
    if (retryAfter !== undefined) this.log.warn({ upstream: this.name, retryAfterMs: retryAfter, rateLimit: next }, 'upstream rate limit');
    if (!next) return;
    const wasHeld = this.rateLimitReserveHeld(now);
    this.rateLimit = next;
    if (this.rateLimitReserveHeld(now) && !wasHeld) {
      // Once per window: further responses within it only move the reset.
      const reserve = this.rateLimitReserve;
      this.log.warn(
        { upstream: this.name, remaining: next.remaining, limit: next.limit, reserve, until: new Date(next.resetAt).toISOString(), resetFrom: next.resetFrom },
        `upstream rate limit nearly spent (${next.remaining} left, upstreams.${this.name}.rateLimitReserve: ${reserve}): stored tags are served without revalidation until the window resets; content not in the store is still fetched`,
      );
    } else if (retryAfter === undefined) {
      this.log.debug({ upstream: this.name, rateLimit: next }, 'upstream rate limit');
    }
  }

  /** upstreams.<host>.rateLimitReserve. */
  get rateLimitReserve(): number {
    return this.config.rateLimitReserve ?? 10;
  }

  /** The upstream's rate limit until its window resets (what its last response said); then unknown. */
  rateLimitNow(now = Date.now()): RateLimit | undefined {
    const r = this.rateLimit;
    return r && now < r.resetAt ? r : undefined;
  }

  /**
   * Whether fewer than rateLimitReserve requests are left in the upstream's window: the mirror
   * then makes only the requests it cannot avoid (content not in the store) until it resets.
   */
  rateLimitReserveHeld(now = Date.now()): boolean {
    const r = this.rateLimitNow(now);
    return r !== undefined && r.remaining < this.rateLimitReserve;
  }

  /** A reload's new client for the same registry keeps what the old one learnt of the rate limit. */
  keepRateLimit(from: UpstreamClient | undefined): void {
    if (from && from.origin === this.origin && from.#basePath === this.#basePath) this.rateLimit ??= from.rateLimit;
  }

  /**
   * One logical request: auth, retries and redirects handled. Resolves with the final response
   * (any status but the retryable ones); the caller must consume or dump its body.
   */
  async request(opts: { method: 'GET' | 'HEAD'; path: string; repository: string; headers?: Record<string, string>; bodyTimeout?: number; blob?: boolean }): Promise<Dispatcher.ResponseData> {
    if (!this.available) throw new UpstreamUnavailableError(`upstream ${this.name} is unreachable (failing fast after repeated errors)`);
    const scope = scopeFor(opts.repository);
    let attempt = 0;
    let retriedAuth = false;
    for (;;) {
      let authorization: string | undefined;
      try {
        authorization = await this.#auth.authorizationFor(scope);
      } catch (e) {
        throw this.#tokenFailure(e);
      }
      let res: Dispatcher.ResponseData;
      let origin: string;
      const started = process.hrtime.bigint();
      try {
        this.stats.requests++;
        ({ res, origin } = await this.#follow(opts.method, `${this.#basePath}${opts.path}`, { ...opts.headers, ...(authorization ? { authorization } : {}) }, opts.bodyTimeout, opts.blob ?? false));
        this.onExchange?.(res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
      } catch (e) {
        this.onExchange?.('error', Number(process.hrtime.bigint() - started) / 1e9);
        // A refused redirect is this request's failure: never retried, never the upstream's fault.
        if (e instanceof MirrorError) {
          this.stats.errors++;
          throw e;
        }
        if (e instanceof RedirectRefusedError) {
          this.stats.errors++;
          throw new UpstreamBadResponseError(`upstream ${this.name} redirected ${opts.method} ${opts.path} to a refused target: ${e.message}`, { cause: e });
        }
        this.#failure();
        if (attempt < this.config.retries) {
          await sleep(backoff(attempt++));
          continue;
        }
        if (isTimeout(e)) throw new UpstreamTimeoutError(`upstream ${this.name} timed out`, { cause: e });
        throw new UpstreamUnavailableError(`upstream ${this.name} is unreachable: ${(e as Error).message}`, { cause: e });
      }
      this.#readRateLimit(res.headers);
      if (res.statusCode === 401 && origin !== this.origin) {
        // A CDN or object store is not the upstream: its challenge is never answered, and never
        // becomes the realm airlock asks for the upstream's tokens.
        await res.body.dump();
        this.stats.errors++;
        throw new UpstreamBadResponseError(`upstream ${this.name} redirected ${opts.method} ${opts.path} to ${origin}, which answered 401; airlock answers challenges only from the upstream itself`);
      }
      if (res.statusCode === 401 && !retriedAuth) {
        retriedAuth = true;
        await res.body.dump();
        let header: string | undefined;
        try {
          header = await this.#auth.answerChallenge(res.headers['www-authenticate'], scope);
        } catch (e) {
          throw this.#tokenFailure(e);
        }
        if (header) continue;
        throw new DeniedError(`upstream ${this.name} requires authentication for ${opts.repository}`);
      }
      if (RETRYABLE_STATUS.has(res.statusCode)) {
        await res.body.dump();
        const retryAfter = parseRetryAfter(res.headers['retry-after']);
        if (attempt < this.config.retries && (retryAfter === undefined || retryAfter <= MAX_RETRY_AFTER_MS)) {
          await sleep(retryAfter ?? backoff(attempt));
          attempt++;
          continue;
        }
        if (res.statusCode === 429) {
          throw new TooManyRequestsError(`upstream ${this.name} is rate limiting requests`, {
            headers: retryAfter === undefined ? undefined : { 'retry-after': String(Math.ceil(retryAfter / 1000)) },
          });
        }
        this.stats.errors++;
        // Whether the upstream as a whole is failing (its /v2/ too), or only this request.
        if (!(await this.#checkBase())) throw new UpstreamUnavailableError(`upstream ${this.name} answered ${res.statusCode} for ${opts.method} ${opts.path}, and its /v2/ fails too`);
        throw new UpstreamBadResponseError(`upstream ${this.name} answered ${res.statusCode} for ${opts.method} ${opts.path}`);
      }
      this.#success();
      if (res.statusCode === 401) this.#auth.invalidate(scope);
      return res;
    }
  }

  #tokenFailure(e: unknown): MirrorError {
    this.stats.errors++;
    if (e instanceof MirrorError) return e;
    const status = e instanceof TokenError ? e.status : undefined;
    if (status === 401 || status === 403) return new DeniedError(`upstream ${this.name} refused the credentials for a token`, { cause: e });
    return new UpstreamUnavailableError(`upstream ${this.name} token service failed: ${(e as Error).message}`, { cause: e });
  }

  /**
   * Whether the upstream's /v2/ answers (any status below 500 counts, 401 included): asked when
   * a request failed through its retries with a 5xx. A failure counts against the upstream.
   */
  #checkBase(): Promise<boolean> {
    this.#baseCheck ??= (async () => {
      const started = process.hrtime.bigint();
      let ok: boolean;
      try {
        this.stats.requests++;
        const res = await this.#pool.request({ path: `${this.#basePath}/v2/`, method: 'GET', headersTimeout: this.config.readTimeout, bodyTimeout: this.config.readTimeout });
        await res.body.dump();
        this.onExchange?.(res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
        ok = res.statusCode < 500;
      } catch {
        this.onExchange?.('error', Number(process.hrtime.bigint() - started) / 1e9);
        ok = false;
      }
      if (ok) this.#success();
      else this.#failure();
      return ok;
    })().finally(() => {
      this.#baseCheck = undefined;
    });
    return this.#baseCheck;
  }

  /** One request, redirects followed (blob requests only); the final response and the origin that sent it. */
  async #follow(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, bodyTimeout: number | undefined, blob: boolean): Promise<{ res: Dispatcher.ResponseData; origin: string }> {
    let url = new URL(path, this.origin);
    let hdrs = headers;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === this.origin;
      const dispatcher: Dispatcher = sameOrigin ? this.#pool : this.#redirects;
      const res = await dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method,
        headers: hdrs,
        headersTimeout: this.config.readTimeout,
        bodyTimeout: bodyTimeout ?? this.config.readTimeout,
      });
      const location = res.headers.location;
      if (res.statusCode >= 300 && res.statusCode < 400 && res.statusCode !== 304 && location) {
        await res.body.dump();
        if (hop >= MAX_REDIRECTS) throw new UpstreamBadResponseError(`upstream ${this.name} redirected more than ${MAX_REDIRECTS} times`);
        let next: URL;
        try {
          next = new URL(Array.isArray(location) ? (location[0] as string) : location, url);
        } catch (e) {
          throw new UpstreamBadResponseError(`upstream ${this.name} sent an invalid redirect for ${method} ${path}`, { cause: e });
        }
        const why = await this.#policy.refusal({ from: url, to: next, blob });
        // The target's origin only: a signed URL's query is a credential.
        if (why) throw new UpstreamBadResponseError(`upstream ${this.name} answered ${res.statusCode} for ${method} ${path} with a redirect to ${next.origin}, refused: ${why}`);
        if (next.origin !== this.origin) {
          // A signed URL carries its own credentials; a second Authorization makes S3 refuse it.
          const { authorization: _drop, ...rest } = hdrs;
          hdrs = rest;
        }
        url = next;
        continue;
      }
      return { res, origin: url.origin };
    }
  }

  // ---- registry operations -------------------------------------------------------------------

  /** GET a manifest: its exact bytes and the upstream's headers; undefined on 404. */
  async getManifest(repository: string, reference: string, maxBytes: number): Promise<{ bytes: Buffer; mediaType: string; digest?: string } | undefined> {
    const res = await this.request({ method: 'GET', path: `/v2/${repository}/manifests/${reference}`, repository, headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') } });
    if (res.statusCode === 404) {
      await res.body.dump();
      return undefined;
    }
    await this.#expectOk(res, repository);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > maxBytes) {
        res.body.destroy();
        throw new UpstreamBadResponseError(`upstream ${this.name} sent a manifest larger than ${maxBytes} bytes`);
      }
      chunks.push(c as Buffer);
    }
    this.stats.bytes += n;
    const ct = String(res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    const digest = res.headers['docker-content-digest'];
    return { bytes: Buffer.concat(chunks, n), mediaType: ct, digest: typeof digest === 'string' ? digest : undefined };
  }

  /** HEAD a manifest: digest and type without a download (Docker Hub does not count HEADs). */
  async headManifest(repository: string, reference: string): Promise<ManifestHead | undefined> {
    const res = await this.request({ method: 'HEAD', path: `/v2/${repository}/manifests/${reference}`, repository, headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') } });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    await this.#expectOk(res, repository);
    const digest = res.headers['docker-content-digest'];
    const len = Number(res.headers['content-length']);
    return {
      digest: typeof digest === 'string' ? digest : undefined,
      mediaType: String(res.headers['content-type'] ?? '').split(';')[0]?.trim(),
      size: Number.isSafeInteger(len) ? len : undefined,
    };
  }

  /** GET a blob, from `offset` on when resuming; the caller streams the body. */
  async getBlob(repository: string, digest: string, offset = 0): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.request({ method: 'GET', path: `/v2/${repository}/blobs/${digest}`, repository, headers, blob: true });
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new BlobUnknownError(undefined, { detail: { digest } });
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      await this.#expectOk(res, repository);
    }
    return res;
  }

  /** HEAD a blob: its size, or undefined when the upstream does not have it. */
  /**
   * Whether the upstream answers at all (GET /v2/, any HTTP status counts, 401 included), within
   * `timeoutMs`. For readiness reports; never retried, never counted as a failure.
   */
  async probe(timeoutMs = 3000): Promise<string> {
    try {
      const res = await this.#pool.request({ path: `${this.#basePath}/v2/`, method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) });
      await res.body.dump();
      return 'reachable';
    } catch (e) {
      return `unreachable: ${(e as Error).message}`;
    }
  }

  async headBlob(repository: string, digest: string): Promise<number | undefined> {
    // Redirected like the GET: an object store's signed URL for HEAD (Distribution's s3 driver signs both).
    const res = await this.request({ method: 'HEAD', path: `/v2/${repository}/blobs/${digest}`, repository, blob: true });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    await this.#expectOk(res, repository);
    const len = Number(res.headers['content-length']);
    return Number.isSafeInteger(len) && len >= 0 ? len : undefined;
  }

  /** Every tag of a repository (following the upstream's pagination), or undefined on 404. */
  async listTags(repository: string, maxPages = 100): Promise<string[] | undefined> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${repository}/tags/list?n=1000`;
    for (let page = 0; path && page < maxPages; page++) {
      const res = await this.request({ method: 'GET', path, repository, headers: { accept: 'application/json' } });
      if (res.statusCode === 404) {
        await res.body.dump();
        return page === 0 ? undefined : tags;
      }
      await this.#expectOk(res, repository);
      const text = await res.body.text();
      let body: { tags?: unknown };
      try {
        body = JSON.parse(text) as { tags?: unknown };
      } catch (e) {
        throw new UpstreamBadResponseError(`upstream ${this.name} sent invalid JSON for tags/list`, { cause: e });
      }
      if (Array.isArray(body.tags)) for (const t of body.tags) if (typeof t === 'string') tags.push(t);
      path = nextPath(res.headers.link, this.#basePath);
    }
    return tags;
  }

  async #expectOk(res: Dispatcher.ResponseData, repository: string): Promise<void> {
    if (res.statusCode >= 200 && res.statusCode < 300) return;
    const text = await res.body.text().catch(() => '');
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new DeniedError(`upstream ${this.name} denied access to ${repository} (it may not exist, or may need credentials)`);
    }
    if (res.statusCode === 404) {
      if (text.includes('NAME_UNKNOWN')) throw new NameUnknownError(`repository ${repository} not found upstream`);
      throw new ManifestUnknownError(undefined, { detail: { name: repository } });
    }
    throw new UpstreamBadResponseError(`upstream ${this.name} answered ${res.statusCode}`);
  }
}

function backoff(attempt: number): number {
  return Math.min(200 * 2 ** attempt, 3_000) * (0.5 + Math.random() / 2);
}

/** The next page's path from an upstream's Link header, only on the upstream itself. */
function nextPath(link: string | string[] | undefined, basePath: string): string | undefined {
  const s = Array.isArray(link) ? link[0] : link;
  const m = s ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(s) : null;
  if (!m) return undefined;
  const u = new URL(m[1] as string, 'http://upstream.invalid');
  if (u.origin !== 'http://upstream.invalid') return undefined;
  const p = `${u.pathname}${u.search}`;
  return basePath && p.startsWith(basePath) ? p.slice(basePath.length) : p;
}
