/**
 * The token-auth step with a scripted token source: a challenge is answered once per request and
 * only from the upstream's own origin; token failures become 403 or 503.
 */
import { describe, expect, it } from 'vitest';
import { DeniedError, UpstreamBadResponseError, UpstreamUnavailableError } from '../../../src/oci/errors.js';
import type { Dispatcher } from '../../../src/runtime/undici.js';
import { authorization } from '../../../src/upstream/authorization.js';
import type { UpstreamRequest, UpstreamResponse, UpstreamStats } from '../../../src/upstream/step.js';
import { TokenError, type Authenticator } from '../../../src/upstream/token-auth.js';

const origin = 'https://registry.example';
const req: UpstreamRequest = { method: 'GET', path: '/v2/library/alpine/blobs/sha256:aa', repository: 'library/alpine', headers: { accept: '*/*' }, blob: true };

function response(statusCode: number, from = origin): UpstreamResponse {
  return { res: { statusCode, headers: { 'www-authenticate': 'Bearer realm="x"' }, body: { dump: async () => null } } as unknown as Dispatcher.ResponseData, origin: from };
}

/** A token source that holds `Bearer tN` after its Nth challenge (or throws `fail`). */
function tokens(opts: { answer?: boolean; fail?: unknown } = {}) {
  const log = { challenges: 0, invalidated: [] as string[] };
  let header: string | undefined;
  const auth = {
    authorizationFor: async () => header,
    answerChallenge: async () => {
      log.challenges++;
      if (opts.fail) throw opts.fail;
      if (opts.answer === false) return undefined;
      header = `Bearer t${log.challenges}`;
      return header;
    },
    invalidate: (scope: string) => log.invalidated.push(scope),
  } as unknown as Authenticator;
  return { auth, log };
}

const stats = (): UpstreamStats => ({ requests: 0, errors: 0, bytes: 0, tokenRequests: 0 });

describe('authorization', () => {
  it('answers a challenge and sends the request again with the token', async () => {
    const { auth, log } = tokens();
    const sent: Array<Record<string, string>> = [];
    const answers = [response(401), response(200)];
    const r = await authorization({ name: 'docker.io', origin, auth, stats: stats() })(async (q) => {
      sent.push(q.headers);
      return answers.shift() as UpstreamResponse;
    })(req);
    expect(r.res.statusCode).toBe(200);
    expect(sent).toEqual([{ accept: '*/*' }, { accept: '*/*', authorization: 'Bearer t1' }]);
    expect(log.challenges).toBe(1);
  });

  it('answers once per request: a second 401 is returned and its token forgotten', async () => {
    const { auth, log } = tokens();
    const step = authorization({ name: 'docker.io', origin, auth, stats: stats() });
    const r = await step(async () => response(401))(req);
    expect(r.res.statusCode).toBe(401);
    expect(log.challenges).toBe(1);
    expect(log.invalidated).toEqual(['repository:library/alpine:pull']);
  });

  it('never answers a 401 from another origin (a CDN after a redirect)', async () => {
    const { auth, log } = tokens();
    const s = stats();
    await expect(authorization({ name: 'docker.io', origin, auth, stats: s })(async () => response(401, 'https://cdn.example'))(req)).rejects.toThrow(UpstreamBadResponseError);
    expect(log.challenges).toBe(0);
    expect(s.errors).toBe(1);
  });

  it('is denied when the challenge cannot be answered', async () => {
    const { auth } = tokens({ answer: false });
    await expect(authorization({ name: 'docker.io', origin, auth, stats: stats() })(async () => response(401))(req)).rejects.toThrow(DeniedError);
  });

  it('maps token failures: refused credentials 403, anything else 503', async () => {
    const refused = tokens({ fail: new TokenError('token endpoint answered 401', 401) });
    await expect(authorization({ name: 'docker.io', origin, auth: refused.auth, stats: stats() })(async () => response(401))(req)).rejects.toThrow(DeniedError);
    const down = tokens({ fail: new TokenError('token request failed') });
    await expect(authorization({ name: 'docker.io', origin, auth: down.auth, stats: stats() })(async () => response(401))(req)).rejects.toThrow(UpstreamUnavailableError);
  });
});
