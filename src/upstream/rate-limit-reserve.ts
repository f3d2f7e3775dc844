/**
 * What an upstream's responses said of its rate limit (rate-limit.ts reads the headers), and
 * upstreams.<host>.rateLimitReserve: under that many requests left in the window, the mirror
 * stops revalidating tags until the window resets, so that content not in the store can still
 * be fetched.
 */
import type { Logger } from '../logging/logger.js';
import type { Dispatcher } from '../runtime/undici.js';
import { parseRateLimit, parseRetryAfter, type RateLimit } from './rate-limit.js';
import type { Step } from './step.js';

export class RateLimitReserve {
  /** What the upstream's last response with a ratelimit-remaining header said. */
  current: RateLimit | undefined;

  constructor(
    /** The upstream's name, for messages. */
    private readonly name: string,
    /** upstreams.<host>.rateLimitReserve. */
    readonly reserve: number,
    private readonly log: Logger,
  ) {}

  /** The upstream's rate limit until its window resets (what its last response said); then unknown. */
  now(at = Date.now()): RateLimit | undefined {
    const r = this.current;
    return r && at < r.resetAt ? r : undefined;
  }

  /** Whether fewer than `reserve` requests are left in the upstream's window. */
  held(at = Date.now()): boolean {
    const r = this.now(at);
    return r !== undefined && r.remaining < this.reserve;
  }

  /** Takes in one response's headers. */
  read(headers: Dispatcher.ResponseData['headers']): void {
    const now = Date.now();
    const retryAfter = parseRetryAfter(headers['retry-after'], now);
    const next = parseRateLimit(headers, now);
    if (retryAfter !== undefined) this.log.warn({ upstream: this.name, retryAfterMs: retryAfter, rateLimit: next }, 'upstream rate limit');
    if (!next) return;
    const wasHeld = this.held(now);
    this.current = next;
    if (this.held(now) && !wasHeld) {
      // Once per window: further responses within it only move the reset.
      const reserve = this.reserve;
      this.log.warn(
        { upstream: this.name, remaining: next.remaining, limit: next.limit, reserve, until: new Date(next.resetAt).toISOString(), resetFrom: next.resetFrom },
        `upstream rate limit nearly spent (${next.remaining} left, upstreams.${this.name}.rateLimitReserve: ${reserve}): stored tags are served without revalidation until the window resets; content not in the store is still fetched`,
      );
    } else if (retryAfter === undefined) {
      this.log.debug({ upstream: this.name, rateLimit: next }, 'upstream rate limit');
    }
  }

  /** The step that reads every response's headers (each attempt's, whatever its status). */
  reading(): Step {
    return (next) => async (req) => {
      const r = await next(req);
      this.read(r.res.headers);
      return r;
    };
  }
}
