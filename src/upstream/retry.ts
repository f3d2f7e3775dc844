/**
 * Bounded retries of one upstream request, as undici's lib/handler/retry-handler.js: connection
 * failures and timeouts, 5xx and 429, with exponential backoff and jitter. A Retry-After (RFC 9110
 * §10.2.3) is honoured when it is short enough to wait for inside a client's request; a longer
 * one, or a 429 after the last retry, reaches the client as a 429 with the upstream's Retry-After.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { TooManyRequestsError, UpstreamTimeoutError, UpstreamUnavailableError } from '../oci/errors.js';
import { parseRetryAfter } from './rate-limit.js';
import { ConnectionFailure, RetriesExhaustedError, type Step, type UpstreamResponse } from './step.js';

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
/** Longest Retry-After we wait inside one client request; beyond it the client gets a 429. */
const MAX_RETRY_AFTER_MS = 10_000;

export interface RetryOptions {
  /** The upstream's name, for messages. */
  name: string;
  /** Retries after the first attempt (upstreams.<host>.retries). */
  retries: number;
}

export function retry({ name, retries }: RetryOptions): Step {
  return (next) => async (req) => {
    for (let attempt = 0; ; ) {
      let r: UpstreamResponse;
      try {
        r = await next(req);
      } catch (e) {
        if (!(e instanceof ConnectionFailure)) throw e;
        if (attempt < retries) {
          await sleep(backoff(attempt++));
          continue;
        }
        if (isTimeout(e.error)) throw new UpstreamTimeoutError(`upstream ${name} timed out`, { cause: e.error });
        throw new UpstreamUnavailableError(`upstream ${name} is unreachable: ${(e.error as Error).message}`, { cause: e.error });
      }
      const { res } = r;
      if (!RETRYABLE_STATUS.has(res.statusCode)) return r;
      await res.body.dump();
      const retryAfter = parseRetryAfter(res.headers['retry-after']);
      if (attempt < retries && (retryAfter === undefined || retryAfter <= MAX_RETRY_AFTER_MS)) {
        await sleep(retryAfter ?? backoff(attempt));
        attempt++;
        continue;
      }
      if (res.statusCode === 429) {
        throw new TooManyRequestsError(`upstream ${name} is rate limiting requests`, {
          headers: retryAfter === undefined ? undefined : { 'retry-after': String(Math.ceil(retryAfter / 1000)) },
        });
      }
      throw new RetriesExhaustedError(res.statusCode);
    }
  };
}

function backoff(attempt: number): number {
  return Math.min(200 * 2 ** attempt, 3_000) * (0.5 + Math.random() / 2);
}

/** undici's timeouts, and an exchange's overall deadline (AbortSignal.timeout's reason). */
export function isTimeout(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  if ((e as { name?: string })?.name === 'TimeoutError') return true;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT';
}
