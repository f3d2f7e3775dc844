/**
 * The token-auth step: each attempt carries the Authorization token-auth.ts holds for the
 * repository's pull scope, and a 401 challenge is answered once per request, then the request
 * sent again. Only the upstream's own origin is answered: a CDN's or object store's 401 (after a
 * redirect) is that request's failure, and never becomes the realm airlock asks for tokens.
 * Token service failures are the request's: 403 when the credentials were refused, else 503.
 */
import { DeniedError, MirrorError, UpstreamBadResponseError, UpstreamUnavailableError } from '../oci/errors.js';
import { TokenError, type Authenticator } from './token-auth.js';
import type { Step, UpstreamStats } from './step.js';

export interface AuthorizationOptions {
  /** The upstream's name, for messages, and its origin. */
  name: string;
  origin: string;
  auth: Authenticator;
  stats: UpstreamStats;
}

export function scopeFor(repository: string): string {
  return `repository:${repository}:pull`;
}

/** Holds whether this request's challenge was answered: compose it per request. */
export function authorization({ name, origin, auth, stats }: AuthorizationOptions): Step {
  const tokenFailure = (e: unknown): MirrorError => {
    stats.errors++;
    if (e instanceof MirrorError) return e;
    const status = e instanceof TokenError ? e.status : undefined;
    if (status === 401 || status === 403) return new DeniedError(`upstream ${name} refused the credentials for a token`, { cause: e });
    return new UpstreamUnavailableError(`upstream ${name} token service failed: ${(e as Error).message}`, { cause: e });
  };
  let answered = false;
  return (next) => async (req) => {
    const scope = scopeFor(req.repository);
    for (;;) {
      let header: string | undefined;
      try {
        header = await auth.authorizationFor(scope);
      } catch (e) {
        throw tokenFailure(e);
      }
      const r = await next({ ...req, headers: { ...req.headers, ...(header ? { authorization: header } : {}) } });
      const { res } = r;
      if (res.statusCode !== 401) return r;
      if (r.origin !== origin) {
        await res.body.dump();
        stats.errors++;
        throw new UpstreamBadResponseError(`upstream ${name} redirected ${req.method} ${req.path} to ${r.origin}, which answered 401; airlock answers challenges only from the upstream itself`);
      }
      if (answered) {
        // Refused even after answering the challenge: the next request fetches a new token.
        auth.invalidate(scope);
        return r;
      }
      answered = true;
      await res.body.dump();
      let answer: string | undefined;
      try {
        answer = await auth.answerChallenge(res.headers['www-authenticate'], scope);
      } catch (e) {
        throw tokenFailure(e);
      }
      if (!answer) throw new DeniedError(`upstream ${name} requires authentication for ${req.repository}`);
    }
  };
}
