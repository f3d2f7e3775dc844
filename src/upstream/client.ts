/**
 * The client for one upstream registry: keep-alive pools, and the registry operations (manifests,
 * blobs, tags). One logical request is composed of small steps (step.ts), outermost first:
 *   breaker.ts             fails fast while the upstream is down; a 5xx after the retries asks /v2/
 *   retry.ts               connection failures, 5xx and 429 with backoff, honouring Retry-After
 *   breaker.ts             each connection failure or timeout counts against the upstream
 *   authorization.ts       tokens (token-auth.ts); 401 challenges only from the upstream's own origin
 *   rate-limit-reserve.ts  ratelimit-remaining read: under rateLimitReserve, tags are not revalidated
 *   exchange-metrics.ts    requests, errors, status and time of each exchange
 *   redirects.ts           the exchange itself; blob redirects followed within redirect-policy.ts
 */
import { Agent, Pool, type Dispatcher } from '../runtime/undici.js';
import type { Logger } from '../logging/logger.js';
import {
  BlobUnknownError,
  DeniedError,
  ManifestUnknownError,
  NameUnknownError,
  UpstreamBadResponseError,
} from '../oci/errors.js';
import { MANIFEST_MEDIA_TYPES } from '../oci/media-types.js';
import { authorization } from './authorization.js';
import { CircuitBreaker } from './breaker.js';
import { exchangeMetrics } from './exchange-metrics.js';
import type { RateLimit } from './rate-limit.js';
import { RateLimitReserve } from './rate-limit-reserve.js';
import { readBody, readHead, SMALL_BODY_MAX } from './read-body.js';
import { RedirectPolicy } from './redirect-policy.js';
import { followRedirects } from './redirects.js';
import { retry } from './retry.js';
import { compose, type Send, type UpstreamStats } from './step.js';
import { Authenticator } from './token-auth.js';
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

/** What the upstream said about a manifest, without its body. */
export interface ManifestHead {
  digest?: string;
  mediaType?: string;
  size?: number;
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
  readonly #breaker: CircuitBreaker;
  readonly #rateLimit: RateLimitReserve;
  /** The innermost step: one exchange, blob redirects followed. */
  readonly #exchange: Send;
  readonly stats: UpstreamStats = { requests: 0, errors: 0, bytes: 0, tokenRequests: 0 };
  /** Called once per HTTP exchange with the upstream (status, or 'error'; seconds to headers), for metrics. */
  onExchange?: (status: number | 'error', seconds: number) => void;

  constructor(readonly config: UpstreamClientConfig, log: Logger) {
    const u = new URL(config.url);
    this.name = config.name;
    this.origin = u.origin;
    this.#basePath = u.pathname.replace(/\/+$/, '');
    const secureContext = trustedContext(config.ca);
    const connect = { timeout: config.connectTimeout, rejectUnauthorized: !config.insecure, ...(secureContext ? { secureContext } : {}) };
    const policy = new RedirectPolicy({ upstream: u, allowPrivate: config.allowPrivateRedirects ?? false });
    this.#pool = new Pool(this.origin, { connections: config.concurrency, connect, keepAliveTimeout: 30_000, pipelining: 1 });
    this.#redirects = new Agent({ connections: config.concurrency, connect: { ...connect, lookup: policy.lookup }, keepAliveTimeout: 30_000 });
    this.#tokens = new Agent({ connections: config.concurrency, connect, keepAliveTimeout: 30_000 });
    const creds = config.username && config.password ? { username: config.username, password: config.password } : undefined;
    this.#auth = new Authenticator(this.#tokens, creds, config.readTimeout, { name: config.name, url: u, tokenHosts: config.tokenHosts ?? [] });
    this.#breaker = new CircuitBreaker({ name: config.name, log, stats: this.stats, answersV2: () => this.#answersV2() });
    this.#rateLimit = new RateLimitReserve(config.name, config.rateLimitReserve ?? 10, log);
    this.#exchange = followRedirects({
      name: config.name, origin: this.origin, basePath: this.#basePath, pool: this.#pool, redirects: this.#redirects, policy, readTimeout: config.readTimeout,
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#pool.close(), this.#redirects.close(), this.#tokens.close()]);
  }

  /** Whether the breaker currently considers the upstream up. */
  get available(): boolean {
    return this.#breaker.available;
  }

  /** What the upstream's last response with a ratelimit-remaining header said. */
  get rateLimit(): RateLimit | undefined {
    return this.#rateLimit.current;
  }

  set rateLimit(r: RateLimit | undefined) {
    this.#rateLimit.current = r;
  }

  /** upstreams.<host>.rateLimitReserve. */
  get rateLimitReserve(): number {
    return this.#rateLimit.reserve;
  }

  /** The upstream's rate limit until its window resets (what its last response said); then unknown. */
  rateLimitNow(now = Date.now()): RateLimit | undefined {
    return this.#rateLimit.now(now);
  }

  /**
   * Whether fewer than rateLimitReserve requests are left in the upstream's window: the mirror
   * then makes only the requests it cannot avoid (content not in the store) until it resets.
   */
  rateLimitReserveHeld(now = Date.now()): boolean {
    return this.#rateLimit.held(now);
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
    const { name, retries } = this.config;
    // Composed per request: retries and the answered challenge are this request's state.
    const send = compose(
      [
        this.#breaker.guard(),
        retry({ name, retries }),
        this.#breaker.countFailures(),
        authorization({ name, origin: this.origin, auth: this.#auth, stats: this.stats }),
        this.#rateLimit.reading(),
        exchangeMetrics(this.stats, (status, seconds) => this.onExchange?.(status, seconds)),
      ],
      this.#exchange,
    );
    const { res } = await send({ method: opts.method, path: opts.path, repository: opts.repository, headers: { ...opts.headers }, bodyTimeout: opts.bodyTimeout, blob: opts.blob ?? false });
    return res;
  }

  /**
   * Whether the upstream's /v2/ answers (any status below 500 counts, 401 included): the
   * breaker asks when a request failed through its retries with a 5xx. A failure is an error.
   */
  async #answersV2(): Promise<boolean> {
    const started = process.hrtime.bigint();
    try {
      this.stats.requests++;
      const res = await this.#pool.request({ path: `${this.#basePath}/v2/`, method: 'GET', headersTimeout: this.config.readTimeout, bodyTimeout: this.config.readTimeout });
      await res.body.dump();
      this.onExchange?.(res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
      if (res.statusCode < 500) return true;
    } catch {
      this.onExchange?.('error', Number(process.hrtime.bigint() - started) / 1e9);
    }
    this.stats.errors++;
    return false;
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
    const bytes = await readBody(res.body, maxBytes, `upstream ${this.name}`, 'a manifest');
    this.stats.bytes += bytes.length;
    const ct = String(res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    const digest = res.headers['docker-content-digest'];
    return { bytes, mediaType: ct, digest: typeof digest === 'string' ? digest : undefined };
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

  /** HEAD a blob: its size, or undefined when the upstream does not have it. */
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
      const text = (await readBody(res.body, SMALL_BODY_MAX, `upstream ${this.name}`, 'a tags/list page')).toString('utf8');
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
    const text = await readHead(res.body);
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
