/**
 * The certificate authorities an upstream's connections trust: the process's default roots plus
 * the upstream's extra CAs (upstreams.<host>.ca). Node's `ca` option replaces the default roots
 * rather than adding to them, so the defaults are listed explicitly: the bundled roots and the
 * operator's NODE_EXTRA_CA_CERTS, which is what Node trusts when no `ca` is given. Without this
 * an upstream's own CA would make its CDN, object store or token service (signed by a public CA)
 * untrusted.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

let defaults: readonly string[] | undefined;

/** What Node trusts when no `ca` is given (read once per process, as Node itself does). */
export function defaultRoots(): readonly string[] {
  if (!defaults) {
    const extra: string[] = [];
    const file = process.env.NODE_EXTRA_CA_CERTS;
    if (file) {
      try {
        extra.push(readFileSync(file, 'utf8'));
      } catch {
        // Node warns about an unreadable file at startup and goes on without it; so do we.
      }
    }
    defaults = Object.freeze([...tls.rootCertificates, ...extra]);
  }
  return defaults;
}

/** The `ca` for a connection: undefined (Node's defaults) without extra CAs, else the defaults plus them. */
export function trustedRoots(extraPem: string | undefined): string[] | undefined {
  if (!extraPem) return undefined;
  return [...defaultRoots(), extraPem];
}

/**
 * A TLS context trusting `trustedRoots(extraPem)`, built once: given as `ca`, the ~150 roots
 * would be parsed again for every connection.
 */
export function trustedContext(extraPem: string | undefined): tls.SecureContext | undefined {
  const ca = trustedRoots(extraPem);
  return ca ? tls.createSecureContext({ ca }) : undefined;
}
