/**
 * The innermost step: one exchange with the upstream, its redirects followed server-side as
 * undici's lib/handler/redirect-handler.js does, but only within redirect-policy.ts's rules (blob
 * requests only, never to a private address unless allowed). Authorization is dropped on a
 * cross-origin hop: a CDN's or object store's signed URL carries its own credentials, and S3
 * refuses a second auth mechanism. Errors below HTTP leave as ConnectionFailure.
 */
import { MirrorError, UpstreamBadResponseError } from '../oci/errors.js';
import type { Dispatcher } from '../runtime/undici.js';
import { bodyDeadline, EXCHANGE_DEADLINE } from './read-body.js';
import { RedirectRefusedError, type RedirectPolicy } from './redirect-policy.js';
import { ConnectionFailure, type Send, type UpstreamRequest, type UpstreamResponse } from './step.js';

const MAX_REDIRECTS = 5;

export interface RedirectsOptions {
  /** The upstream's name, for messages. */
  name: string;
  /** The upstream's origin and base path (no trailing slash). */
  origin: string;
  basePath: string;
  /** For the upstream's own origin. */
  pool: Dispatcher;
  /** For redirect targets on other origins: resolves names through the policy's lookup. */
  redirects: Dispatcher;
  policy: RedirectPolicy;
  readTimeout: number;
}

export function followRedirects(opts: RedirectsOptions): Send {
  return async (req) => {
    try {
      return await follow(opts, req);
    } catch (e) {
      if (e instanceof MirrorError) throw e;
      // A refused redirect is this request's failure: never retried, never the upstream's fault.
      if (e instanceof RedirectRefusedError) {
        throw new UpstreamBadResponseError(`upstream ${opts.name} redirected ${req.method} ${req.path} to a refused target: ${e.message}`, { cause: e });
      }
      throw new ConnectionFailure(e);
    }
  };
}

/** The final response and the origin that sent it. */
async function follow(opts: RedirectsOptions, req: UpstreamRequest): Promise<UpstreamResponse> {
  const { name } = opts;
  const { method } = req;
  const path = `${opts.basePath}${req.path}`;
  let url = new URL(path, opts.origin);
  let headers = req.headers;
  for (let hop = 0; ; hop++) {
    const dispatcher = url.origin === opts.origin ? opts.pool : opts.redirects;
    const res = await dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method,
      headers,
      headersTimeout: opts.readTimeout,
      bodyTimeout: req.bodyTimeout ?? opts.readTimeout,
    });
    const location = res.headers.location;
    if (res.statusCode < 300 || res.statusCode >= 400 || res.statusCode === 304 || !location) {
      // Anything but a blob is small: its whole body within a deadline.
      if (!req.blob) bodyDeadline(res.body, opts.readTimeout * EXCHANGE_DEADLINE);
      return { res, origin: url.origin };
    }
    await res.body.dump();
    if (hop >= MAX_REDIRECTS) throw new UpstreamBadResponseError(`upstream ${name} redirected more than ${MAX_REDIRECTS} times`);
    let next: URL;
    try {
      next = new URL(Array.isArray(location) ? (location[0] as string) : location, url);
    } catch (e) {
      throw new UpstreamBadResponseError(`upstream ${name} sent an invalid redirect for ${method} ${path}`, { cause: e });
    }
    const why = await opts.policy.refusal({ from: url, to: next, blob: req.blob });
    // The target's origin only: a signed URL's query is a credential.
    if (why) throw new UpstreamBadResponseError(`upstream ${name} answered ${res.statusCode} for ${method} ${path} with a redirect to ${next.origin}, refused: ${why}`);
    if (next.origin !== opts.origin) {
      const { authorization: _drop, ...rest } = headers;
      headers = rest;
    }
    url = next;
  }
}
