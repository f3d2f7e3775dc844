/**
 * How client.ts composes one logical request to an upstream, after undici's interceptors and
 * lib/handler/ (`dispatch => dispatch`): each step wraps the next and does one thing (the breaker,
 * retries, token auth, rate-limit headers, metrics, redirects). Steps that keep state for one
 * request (its retries, whether its challenge was answered) are composed per request, as undici
 * builds a handler per dispatch.
 */
import type { Dispatcher } from '../runtime/undici.js';

export interface UpstreamRequest {
  method: 'GET' | 'HEAD';
  /** Under the upstream's base path (`/v2/…`), as the caller wrote it. */
  path: string;
  repository: string;
  headers: Record<string, string>;
  bodyTimeout?: number;
  /** Only blob requests may be redirected (redirect-policy.ts). */
  blob: boolean;
}

export interface UpstreamResponse {
  res: Dispatcher.ResponseData;
  /** The origin that sent it: the upstream's own, or a redirect target's. */
  origin: string;
}

export type Send = (req: UpstreamRequest) => Promise<UpstreamResponse>;
export type Step = (next: Send) => Send;

/** The steps around `send`, the first outermost. */
export function compose(steps: readonly Step[], send: Send): Send {
  return steps.reduceRight<Send>((next, step) => step(next), send);
}

/** Totals of the exchanges with one upstream, read by the metrics when scraped. */
export interface UpstreamStats {
  requests: number;
  errors: number;
  bytes: number;
  tokenRequests: number;
}

/**
 * An exchange that failed below HTTP (connection refused or reset, TLS, a timeout); `cause` is
 * undici's error. Only these are retried and count against the upstream; retry.ts turns the last
 * one into the request's 503 or 504.
 */
export class ConnectionFailure extends Error {
  override name = 'ConnectionFailure';
  constructor(readonly error: unknown) {
    super((error as Error)?.message ?? String(error), { cause: error });
  }
}

/**
 * A retryable status (5xx) still there after the last retry, as undici's RequestRetryError: the
 * breaker's guard decides whether the request or the whole upstream failed.
 */
export class RetriesExhaustedError extends Error {
  override name = 'RetriesExhaustedError';
  constructor(readonly statusCode: number) {
    super(`retries exhausted with status ${statusCode}`);
  }
}
