/**
 * The circuit breaker's steps: only connection failures and a failing /v2/ open it; a 5xx that
 * outlasted the retries is that request's 502 unless /v2/ fails too.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logging/logger.js';
import { UpstreamBadResponseError, UpstreamUnavailableError } from '../../../src/oci/errors.js';
import type { Dispatcher } from '../../../src/runtime/undici.js';
import { CircuitBreaker } from '../../../src/upstream/breaker.js';
import { compose, ConnectionFailure, RetriesExhaustedError, type Send, type UpstreamRequest, type UpstreamStats } from '../../../src/upstream/step.js';

const log = createLogger({ level: 'silent' });
const req: UpstreamRequest = { method: 'GET', path: '/v2/library/alpine/manifests/latest', repository: 'library/alpine', headers: {}, blob: false };
const ok: Send = async () => ({ res: { statusCode: 200, headers: {} } as unknown as Dispatcher.ResponseData, origin: 'https://registry.example' });

function breaker(answersV2: () => Promise<boolean> = async () => true) {
  const stats: UpstreamStats = { requests: 0, errors: 0, bytes: 0, tokenRequests: 0 };
  return { b: new CircuitBreaker({ name: 'docker.io', log, stats, answersV2 }), stats };
}

describe('CircuitBreaker', () => {
  it('opens after five connection failures in a row and then fails fast; an answer closes it', async () => {
    const { b } = breaker();
    const failing = compose([b.guard(), b.countFailures()], async () => {
      throw new ConnectionFailure(new Error('connect ECONNREFUSED'));
    });
    for (let i = 0; i < 4; i++) await expect(failing(req)).rejects.toThrow(ConnectionFailure);
    expect(b.available).toBe(true);
    await expect(failing(req)).rejects.toThrow(ConnectionFailure);
    expect(b.available).toBe(false);
    await expect(compose([b.guard()], ok)(req)).rejects.toThrow(/failing fast/);
    b.success();
    expect((await compose([b.guard()], ok)(req)).res.statusCode).toBe(200);
  });

  it('does not count errors that are not connection failures', async () => {
    const { b } = breaker();
    const refused = compose([b.guard(), b.countFailures()], async () => {
      throw new UpstreamBadResponseError('a refused redirect');
    });
    for (let i = 0; i < 10; i++) await expect(refused(req)).rejects.toThrow(UpstreamBadResponseError);
    expect(b.available).toBe(true);
  });

  it('a 5xx after the retries is the request\'s 502 while /v2/ answers, and 503 when it fails too', async () => {
    let v2 = true;
    let checks = 0;
    const { b, stats } = breaker(async () => {
      checks++;
      return v2;
    });
    const exhausted = compose([b.guard()], async () => {
      throw new RetriesExhaustedError(500);
    });
    await expect(exhausted(req)).rejects.toThrow(UpstreamBadResponseError);
    await expect(exhausted(req)).rejects.toThrow('upstream docker.io answered 500 for GET /v2/library/alpine/manifests/latest');
    expect(stats.errors).toBe(2);
    v2 = false;
    await expect(exhausted(req)).rejects.toThrow(UpstreamUnavailableError);
    expect(checks).toBe(3);
  });

  it('asks /v2/ once for requests failing together', async () => {
    let checks = 0;
    const { b } = breaker(async () => {
      checks++;
      await new Promise((r) => setTimeout(r, 20));
      return true;
    });
    const exhausted = compose([b.guard()], async () => {
      throw new RetriesExhaustedError(503);
    });
    await Promise.allSettled([exhausted(req), exhausted(req), exhausted(req)]);
    expect(checks).toBe(1);
  });
});
