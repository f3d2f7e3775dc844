/**
 * Splits a raw /v2/ request path into an endpoint, before any percent-decoding of the name, so an
 * encoded slash or dot can never change which repository a request addresses
 * (distribution-spec "Endpoints"). The name is validated against the distribution grammar.
 */
import { NameInvalidError } from '../oci/errors.js';
import { parseRepositoryName } from '../oci/reference.js';

export type V2Endpoint =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'upload'; name: string; session?: string }
  | { kind: 'referrers'; name: string; digest: string }
  | { kind: 'unknown' };

const MAX_PATH = 2048;

function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function named(name: string): string {
  if (name === '') throw new NameInvalidError('repository name is empty');
  return parseRepositoryName(name);
}

/** `url` is the request target as sent (path and query, still percent-encoded). */
export function parseV2Path(url: string): V2Endpoint {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path === '/v2' || path === '/v2/') return { kind: 'base' };
  if (!path.startsWith('/v2/') || path.length > MAX_PATH) return { kind: 'unknown' };
  const rest = path.slice(4);
  if (rest === '_catalog') return { kind: 'catalog' };

  // The action is found from the end: names may contain any number of components.
  const parts = rest.split('/');
  const n = parts.length;
  const last = parts[n - 1] as string;
  const prev = parts[n - 2];
  if (n >= 3 && prev === 'tags' && last === 'list') return { kind: 'tags', name: named(parts.slice(0, n - 2).join('/')) };
  if (n >= 3 && prev === 'manifests') return { kind: 'manifest', name: named(parts.slice(0, n - 2).join('/')), reference: decodeComponent(last) };
  if (n >= 3 && prev === 'referrers') return { kind: 'referrers', name: named(parts.slice(0, n - 2).join('/')), digest: decodeComponent(last) };
  if (n >= 4 && parts[n - 3] === 'blobs' && prev === 'uploads') {
    return { kind: 'upload', name: named(parts.slice(0, n - 3).join('/')), session: last || undefined };
  }
  if (n >= 3 && prev === 'blobs') {
    if (last === 'uploads') return { kind: 'upload', name: named(parts.slice(0, n - 2).join('/')) };
    return { kind: 'blob', name: named(parts.slice(0, n - 2).join('/')), digest: decodeComponent(last) };
  }
  return { kind: 'unknown' };
}
