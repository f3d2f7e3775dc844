/**
 * The retry step on a scripted exchange: what is retried (connection failures, 5xx, 429 with a
 * Retry-After short enough to wait for), and what the request gets when retries run out.
 */
import { describe, expect, it } from 'vitest';
import { TooManyRequestsError, UpstreamTimeoutError, UpstreamUnavailableError } from '../../../src/oci/errors.js';
import type { Dispatcher } from '../../../src/runtime/undici.js';
import { retry } from '../../../src/upstream/retry.js';
import { ConnectionFailure, RetriesExhaustedError, type UpstreamRequest, type UpstreamResponse } from '../../../src/upstream/step.js';

const req: UpstreamRequest = { method: 'GET', path: '/v2/library/alpine/manifests/latest', repository: 'library/alpine', headers: {}, blob: false };

function response(statusCode: number, headers: Record<string, string> = {}): UpstreamResponse {
  return { res: { statusCode, headers, body: { dump: async () => null } } as unknown as Dispatcher.ResponseData, origin: 'https://registry.example' };
}

/** A send that plays `script` in order: a status to answer, or an error to throw. */
function scripted(script: Array<UpstreamResponse | Error>) {
  const calls = { n: 0 };
  const send = async () => {
    const next = script[calls.n++];
    if (!next) throw new Error('script ran out');
    if (next instanceof Error) throw next;
    return next;
  };
  return { send, calls };
}

const refused = () => new ConnectionFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));

describe('retry', () => {
  it('retries connection failures and 5xx, then passes the answer on', async () => {
    const { send, calls } = scripted([refused(), response(503, { 'retry-after': '0' }), response(200)]);
    const r = await retry({ name: 'docker.io', retries: 2 })(send)(req);
    expect(r.res.statusCode).toBe(200);
    expect(calls.n).toBe(3);
  });

  it('passes other statuses on untouched, 401 and 404 included', async () => {
    for (const status of [401, 404, 501]) {
      const { send, calls } = scripted([response(status)]);
      expect((await retry({ name: 'docker.io', retries: 2 })(send)(req)).res.statusCode).toBe(status);
      expect(calls.n).toBe(1);
    }
  });

  it('turns the last connection failure into 503, or 504 for a timeout', async () => {
    await expect(retry({ name: 'docker.io', retries: 0 })(scripted([refused()]).send)(req)).rejects.toThrow(UpstreamUnavailableError);
    await expect(retry({ name: 'docker.io', retries: 0 })(scripted([refused()]).send)(req)).rejects.toThrow('upstream docker.io is unreachable: connect ECONNREFUSED');
    const timeout = new ConnectionFailure(Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
    await expect(retry({ name: 'docker.io', retries: 0 })(scripted([timeout]).send)(req)).rejects.toThrow(UpstreamTimeoutError);
  });

  it('leaves a 5xx that outlasted the retries to the breaker', async () => {
    const { send, calls } = scripted([response(502, { 'retry-after': '0' }), response(502)]);
    const e = await retry({ name: 'docker.io', retries: 1 })(send)(req).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RetriesExhaustedError);
    expect((e as RetriesExhaustedError).statusCode).toBe(502);
    expect(calls.n).toBe(2);
  });

  it('answers 429 with the upstream Retry-After at once when it is too long to wait for', async () => {
    const { send, calls } = scripted([response(429, { 'retry-after': '60' })]);
    const e = await retry({ name: 'docker.io', retries: 3 })(send)(req).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TooManyRequestsError);
    expect((e as TooManyRequestsError).headers).toEqual({ 'retry-after': '60' });
    expect(calls.n).toBe(1);
  });

  it('never retries what is not a connection failure (a refused redirect, a token failure)', async () => {
    const { send, calls } = scripted([new Error('not ours to retry')]);
    await expect(retry({ name: 'docker.io', retries: 3 })(send)(req)).rejects.toThrow('not ours to retry');
    expect(calls.n).toBe(1);
  });
});
