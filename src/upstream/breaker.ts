/**
 * The circuit breaker of one upstream, so that a dead upstream fails fast. It counts only what
 * says the upstream as a whole is down: connection failures and timeouts, and its /v2/ failing.
 * A 5xx for one request is that request's failure (502), so that a client asking for something
 * the upstream chokes on cannot switch the upstream off for every other client.
 */
import type { Logger } from '../logging/logger.js';
import { UpstreamBadResponseError, UpstreamUnavailableError } from '../oci/errors.js';
import { ConnectionFailure, RetriesExhaustedError, type Step, type UpstreamStats } from './step.js';

const BREAKER_THRESHOLD = 5;
const BREAKER_COOLDOWN_MS = 5_000;

export interface CircuitBreakerOptions {
  /** The upstream's name, for messages. */
  name: string;
  log: Logger;
  stats: UpstreamStats;
  /** Whether the upstream's /v2/ answers (any status below 500); counts its own exchange. */
  answersV2: () => Promise<boolean>;
}

export class CircuitBreaker {
  #consecutiveFailures = 0;
  #openUntil = 0;
  /** The check of the upstream's /v2/ in flight (one at a time, however many requests failed). */
  #check: Promise<boolean> | undefined;

  constructor(private readonly opts: CircuitBreakerOptions) {}

  /** Whether the breaker currently considers the upstream up. */
  get available(): boolean {
    return Date.now() >= this.#openUntil;
  }

  failure(): void {
    if (++this.#consecutiveFailures >= BREAKER_THRESHOLD) {
      this.#openUntil = Date.now() + BREAKER_COOLDOWN_MS;
      this.opts.log.warn({ upstream: this.opts.name, cooldownMs: BREAKER_COOLDOWN_MS }, 'upstream unreachable; failing fast for a while');
    }
  }

  success(): void {
    this.#consecutiveFailures = 0;
    this.#openUntil = 0;
  }

  /** Whether the upstream's /v2/ answers; asked when a request failed through its retries with a 5xx. */
  #checkV2(): Promise<boolean> {
    this.#check ??= this.opts.answersV2().then((ok) => {
      if (ok) this.success();
      else this.failure();
      return ok;
    }).finally(() => {
      this.#check = undefined;
    });
    return this.#check;
  }

  /**
   * The outermost step: fails fast while the breaker is open; a final answer closes it; a 5xx
   * that outlasted the retries asks whether the upstream's /v2/ fails too (503) or only this
   * request (502).
   */
  guard(): Step {
    const { name, stats } = this.opts;
    return (next) => async (req) => {
      if (!this.available) throw new UpstreamUnavailableError(`upstream ${name} is unreachable (failing fast after repeated errors)`);
      try {
        const r = await next(req);
        this.success();
        return r;
      } catch (e) {
        if (!(e instanceof RetriesExhaustedError)) throw e;
        stats.errors++;
        if (!(await this.#checkV2())) throw new UpstreamUnavailableError(`upstream ${name} answered ${e.statusCode} for ${req.method} ${req.path}, and its /v2/ fails too`);
        throw new UpstreamBadResponseError(`upstream ${name} answered ${e.statusCode} for ${req.method} ${req.path}`);
      }
    };
  }

  /** Below the retries: each connection failure or timeout counts against the upstream. */
  countFailures(): Step {
    return (next) => async (req) => {
      try {
        return await next(req);
      } catch (e) {
        if (e instanceof ConnectionFailure) this.failure();
        throw e;
      }
    };
  }
}
