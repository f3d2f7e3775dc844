/**
 * An upstream response body read whole into memory, never more than a bound: a token, a tags
 * page, an error. An upstream (or whatever answers in its place) must not make airlock buffer
 * without end; a body cut off or timed out is the upstream's failure, so a stored tag is served.
 */
import { MirrorError, UpstreamBadResponseError, UpstreamTimeoutError, UpstreamUnavailableError } from '../oci/errors.js';
import type { Dispatcher } from '../runtime/undici.js';
import { isTimeout } from './retry.js';

/**
 * A manifest, tags page or token body ends within this many read timeouts of its headers: the
 * read timeout alone bounds only the wait for each next byte.
 */
export const EXCHANGE_DEADLINE = 2;
/** Token responses and tags pages: far above any real one (Docker Hub's tokens are ~2 KiB). */
export const SMALL_BODY_MAX = 4 * 2 ** 20;
/** Error bodies are only looked into for their code. */
export const ERROR_BODY_MAX = 64 * 2 ** 10;

type Body = Dispatcher.ResponseData['body'];

/**
 * Ends `body` with a TimeoutError unless it has ended within `ms`. Counted from the headers, not
 * from the request: a request waiting for a free connection (behind slow blob fills) is not late.
 */
export function bodyDeadline(body: Body, ms: number): void {
  const t = setTimeout(() => body.destroy(Object.assign(new Error(`the body did not end within ${ms} ms of its headers`), { name: 'TimeoutError' })), ms);
  t.unref();
  body.once('close', () => clearTimeout(t));
}

/** The body, or an OCI error naming `who` sent `what` (too large, timed out, cut off). */
export async function readBody(body: Body, max: number, who: string, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      n += (c as Buffer).length;
      if (n > max) {
        body.destroy();
        throw new UpstreamBadResponseError(`${who} sent ${what} larger than ${max} bytes`);
      }
      chunks.push(c as Buffer);
    }
  } catch (e) {
    if (e instanceof MirrorError) throw e;
    if (isTimeout(e)) throw new UpstreamTimeoutError(`${who} did not finish sending ${what} in time`, { cause: e });
    throw new UpstreamUnavailableError(`${who} broke off ${what}: ${(e as Error).message}`, { cause: e });
  }
  return Buffer.concat(chunks, n);
}

/** At most `max` bytes of the body as text, the rest dropped; never throws. */
export async function readHead(body: Body, max = ERROR_BODY_MAX): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      chunks.push(c as Buffer);
      n += (c as Buffer).length;
      if (n >= max) {
        body.destroy();
        break;
      }
    }
  } catch {
    // What arrived is enough to look for an error code in.
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}
