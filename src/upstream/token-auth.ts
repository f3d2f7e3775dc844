/**
 * Registry token auth (Docker "Token Authentication Specification", as Docker Hub, ghcr.io and
 * Distribution implement it): a 401 with `WWW-Authenticate: Bearer realm,service,scope` sends us
 * to the realm for a token, anonymously or with the upstream's credentials by Basic. Tokens are
 * cached per scope until shortly before they expire; `Basic` challenges get the credentials.
 * Tokens and passwords are never logged. The caller (authorization.ts) hands over only
 * challenges from the upstream's own origin; the realm they name is checked (realm-policy.ts)
 * before it is asked, and a refused realm is never remembered.
 */
import { LRUCache } from 'lru-cache';
import { UpstreamBadResponseError } from '../oci/errors.js';
import { SharedCalls } from '../runtime/shared-calls.js';
import type { Dispatcher } from '../runtime/undici.js';
import { parseChallenges, type Challenge } from './challenge.js';
import { bodyDeadline, EXCHANGE_DEADLINE, readBody, SMALL_BODY_MAX } from './read-body.js';
import { realmRefusal } from './realm-policy.js';

export interface Credentials {
  username: string;
  password: string;
}

export class TokenError extends Error {
  constructor(message: string, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenError';
  }
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

/** Seconds of life assumed when the realm does not say (the spec's default). */
const DEFAULT_EXPIRES_IN = 60;
/** Refresh this long before expiry so a token never dies in flight. */
const MARGIN_MS = 10_000;

export class Authenticator {
  /** scope key → Authorization header value. */
  readonly #tokens = new LRUCache<string, CachedToken>({ max: 10_000 });
  /** scope key → token request in flight (many misses share one realm request). */
  readonly #inflight = new SharedCalls<CachedToken>();
  /** The last challenge seen: lets us fetch a token before the first request of a new scope. */
  #challenge: Challenge | undefined;
  /** Number of token requests made (for tests and metrics). */
  tokenRequests = 0;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly credentials: Credentials | undefined,
    private readonly timeoutMs: number,
    /** The upstream (its URL and name) and the hosts besides its own that may get its credentials. */
    private readonly upstream: { name: string; url: URL; tokenHosts: readonly string[] },
  ) {}

  /** Authorization for a request on `scope`, if we already know how to get one. */
  async authorizationFor(scope: string): Promise<string | undefined> {
    const cached = this.#tokens.get(scope);
    if (cached && cached.expiresAt > Date.now()) return cached.header;
    if (!this.#challenge) return undefined;
    return (await this.#obtain(scope, this.#challenge)).header;
  }

  /** Handles a 401's challenge; returns the header to retry with, or undefined if we cannot. */
  async answerChallenge(wwwAuthenticate: string | string[] | undefined, scope: string): Promise<string | undefined> {
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      this.#realm(bearer);
      this.#challenge = bearer;
      this.#tokens.delete(scope);
      return (await this.#obtain(scope, bearer)).header;
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.credentials) {
      const header = basic(this.credentials);
      this.#tokens.set(scope, { header, expiresAt: Number.MAX_SAFE_INTEGER });
      return header;
    }
    return undefined;
  }

  /** Forgets a token the upstream refused, so the next request fetches a new one. */
  invalidate(scope: string): void {
    this.#tokens.delete(scope);
  }

  #obtain(scope: string, challenge: Challenge): Promise<CachedToken> {
    return this.#inflight.run(scope, () => this.#fetchToken(scope, challenge));
  }

  /** The challenge's realm as a URL, if airlock may ask it; throws (502) when it may not. */
  #realm(challenge: Challenge): URL {
    let url: URL;
    try {
      url = new URL(challenge.params.realm as string);
    } catch (e) {
      throw new UpstreamBadResponseError(`upstream ${this.upstream.name} sent an invalid token realm`, { cause: e });
    }
    const why = realmRefusal(url, this.upstream.url, { tokenHosts: this.upstream.tokenHosts, credentials: this.credentials !== undefined });
    if (why) throw new UpstreamBadResponseError(`upstream ${this.upstream.name}'s token realm refused: ${why}`);
    return url;
  }

  async #fetchToken(scope: string, challenge: Challenge): Promise<CachedToken> {
    const url = this.#realm(challenge);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    for (const s of scope.split(' ')) if (s) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.credentials) headers.authorization = basic(this.credentials);
    this.tokenRequests++;
    const started = Date.now();
    let res: Dispatcher.ResponseData;
    try {
      res = await this.dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (e) {
      throw new TokenError(`token request to ${url.origin} failed: ${(e as Error).message}`, undefined, { cause: e });
    }
    // The whole body, not each byte: a token server that drips must not hold pulls forever.
    bodyDeadline(res.body, this.timeoutMs * EXCHANGE_DEADLINE);
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      throw new TokenError(`token endpoint ${url.origin}${url.pathname} answered ${res.statusCode}`, res.statusCode);
    }
    let text: string;
    try {
      text = (await readBody(res.body, SMALL_BODY_MAX, `token endpoint ${url.origin}${url.pathname}`, 'a token')).toString('utf8');
    } catch (e) {
      throw new TokenError((e as Error).message, undefined, { cause: e });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch (e) {
      throw new TokenError('token endpoint answered with invalid JSON', res.statusCode, { cause: e });
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw new TokenError('token endpoint answered without a token');
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_EXPIRES_IN;
    const t = { header: `Bearer ${token}`, expiresAt: started + Math.max(expiresIn * 1000 - MARGIN_MS, 1000) };
    this.#tokens.set(scope, t);
    return t;
  }
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
