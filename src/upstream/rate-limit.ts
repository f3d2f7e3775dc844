/**
 * An upstream's rate limit as its response headers tell it. Docker Hub sends
 * `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 76;w=21600` (the count and its window
 * in seconds, after the IETF RateLimit header fields draft:
 * https://datatracker.ietf.org/doc/html/draft-ietf-httpapi-ratelimit-headers); others send
 * `ratelimit-reset` (seconds until the counts reset) or, when refusing, `Retry-After`
 * (RFC 9110 §10.2.3).
 */
export interface RateLimit {
  /** Requests the upstream allows per window, when it says. */
  limit?: number;
  /** Requests left in the window. */
  remaining: number;
  /** When the counts are taken to reset (epoch ms). */
  resetAt: number;
  /**
   * Where resetAt comes from: Retry-After or ratelimit-reset when sent, else the `w=` window
   * counted from this response, else DEFAULT_RATE_LIMIT_WINDOW_MS.
   */
  resetFrom: 'retry-after' | 'reset' | 'window' | 'default';
  /** When the response that said so arrived (epoch ms). */
  at: number;
}

/**
 * The window assumed when an upstream sends a remaining count but neither a window, a reset
 * nor a Retry-After: an hour, the usual window of APIs that leave it out. A later response's
 * count replaces it sooner.
 */
export const DEFAULT_RATE_LIMIT_WINDOW_MS = 3_600_000;

type Headers = Record<string, string | string[] | undefined>;

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** `76;w=21600` (or `76`) → the count and the window in seconds. */
function parseCount(v: string | string[] | undefined): { count: number; windowSeconds?: number } | undefined {
  const s = first(v);
  const m = s === undefined ? null : /^\s*(\d+)\s*(?:[,;]|$)/.exec(s);
  if (!s || !m) return undefined;
  const w = /;\s*w\s*=\s*(\d+)/.exec(s);
  return { count: Number(m[1]), ...(w ? { windowSeconds: Number(w[1]) } : {}) };
}

/** The rate limit a response's headers state, or undefined when they state no remaining count. */
export function parseRateLimit(headers: Headers, now = Date.now()): RateLimit | undefined {
  const remaining = parseCount(headers['ratelimit-remaining']);
  if (!remaining) return undefined;
  const limit = parseCount(headers['ratelimit-limit']);
  const retryAfter = parseRetryAfter(headers['retry-after'], now);
  const reset = first(headers['ratelimit-reset'])?.trim();
  // Delta seconds, as the draft says; a value that can only be a Unix time is taken as one.
  const resetSeconds = reset && /^\d+$/.test(reset) ? Number(reset) : undefined;
  const resetMs = resetSeconds === undefined ? undefined : resetSeconds > 1e9 ? Math.max(0, resetSeconds * 1000 - now) : resetSeconds * 1000;
  const windowSeconds = remaining.windowSeconds ?? limit?.windowSeconds;
  let resetAt: number;
  let resetFrom: RateLimit['resetFrom'];
  if (retryAfter !== undefined) {
    resetAt = now + retryAfter;
    resetFrom = 'retry-after';
  } else if (resetMs !== undefined) {
    resetAt = now + resetMs;
    resetFrom = 'reset';
  } else if (windowSeconds !== undefined && windowSeconds > 0) {
    resetAt = now + windowSeconds * 1000;
    resetFrom = 'window';
  } else {
    resetAt = now + DEFAULT_RATE_LIMIT_WINDOW_MS;
    resetFrom = 'default';
  }
  return { ...(limit ? { limit: limit.count } : {}), remaining: remaining.count, resetAt, resetFrom, at: now };
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  if (v === undefined) return undefined;
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}
