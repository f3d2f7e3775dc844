import { MirrorError } from '../oci/errors.js';

/** Upstream failures that make a stale answer (a stored tag, the stored tags list) better than none. */
export function isUpstreamFailure(e: unknown): boolean {
  return e instanceof MirrorError && ['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_BAD_RESPONSE', 'TOOMANYREQUESTS'].includes(e.code);
}
