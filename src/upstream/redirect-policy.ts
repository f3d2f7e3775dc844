/**
 * Which redirects of an upstream airlock follows. Registries send blob GETs to a CDN or an
 * object store with a signed URL (distribution-spec "Pulling blobs": a 307 is allowed there), so
 * those are followed; nothing else is, because whatever a redirect target answers would reach the
 * client as the upstream's answer. Rules, checked on every hop:
 *  - only blob requests are redirected;
 *  - only to http(s), and never from https down to http;
 *  - never to a loopback, link-local or private address, unless the upstream itself is on such
 *    an address (an internal registry with an internal object store) or the operator allowed it
 *    (upstreams.<host>.allowPrivateRedirects). Host names are checked on the addresses they
 *    resolve to, when the connection is made (`lookup`), so a name cannot resolve to one address
 *    for the check and another for the connection.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { addressClass, isPrivateAddress } from './address-class.js';

/** A redirect target's address was refused (thrown by `lookup`, so it surfaces as a connection error). */
export class RedirectRefusedError extends Error {
  override name = 'RedirectRefusedError';
  readonly code = 'AIRLOCK_REDIRECT_REFUSED';
}

export type Resolve = (hostname: string) => Promise<string[]>;

const resolveAll: Resolve = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses.map((a) => a.address))));
  });

export interface RedirectPolicyOptions {
  /** The upstream's base URL. */
  upstream: string | URL;
  /** upstreams.<host>.allowPrivateRedirects */
  allowPrivate: boolean;
  /** Host name → every address (dns.lookup with all: true); replaceable for tests. */
  resolve?: Resolve;
}

export class RedirectPolicy {
  readonly #upstream: URL;
  readonly #allowPrivate: boolean;
  readonly #resolve: Resolve;
  #upstreamPrivate: Promise<boolean> | undefined;

  constructor(opts: RedirectPolicyOptions) {
    this.#upstream = new URL(opts.upstream);
    this.#allowPrivate = opts.allowPrivate;
    this.#resolve = opts.resolve ?? resolveAll;
  }

  /**
   * Whether the upstream is itself on a loopback, link-local or private address (any of its
   * addresses). Resolved once; a failed resolution counts as public (the stricter answer) and is
   * tried again next time.
   */
  upstreamIsPrivate(): Promise<boolean> {
    if (!this.#upstreamPrivate) {
      const host = this.#upstream.hostname;
      const p = addressClass(host) !== undefined
        ? Promise.resolve(isPrivateAddress(host))
        : this.#resolve(host).then((as) => as.some(isPrivateAddress));
      this.#upstreamPrivate = p.catch(() => {
        this.#upstreamPrivate = undefined;
        return false;
      });
    }
    return this.#upstreamPrivate;
  }

  /** Whether airlock may connect to `address` (an IP) for a redirect; the reason when not. */
  async addressRefusal(address: string): Promise<string | undefined> {
    const cls = addressClass(address);
    if (cls === undefined || cls === 'public') return undefined;
    if (this.#allowPrivate || (await this.upstreamIsPrivate())) return undefined;
    return `its address ${address} is ${cls === 'private' || cls === 'reserved' ? 'a private or reserved' : `a ${cls}`} address and the upstream is not (set allowPrivateRedirects to allow it)`;
  }

  /**
   * Why the hop from `from` to `to` must not be followed (undefined: follow it). The address of
   * a host name is checked when connecting, by `lookup`; an address literal is checked here.
   */
  async refusal(hop: { from: URL; to: URL; blob: boolean }): Promise<string | undefined> {
    const { from, to } = hop;
    if (!hop.blob) return 'airlock follows redirects only for blobs';
    if (to.protocol !== 'https:' && to.protocol !== 'http:') return `a redirect to ${to.protocol} is not http(s)`;
    if (from.protocol === 'https:' && to.protocol === 'http:') return 'a redirect from https to http';
    if (to.username || to.password) return 'a redirect URL carrying credentials';
    return this.addressRefusal(to.hostname);
  }

  /**
   * A `lookup` for net.connect and tls.connect (undici's `connect.lookup`) on the dispatcher that
   * follows redirects: resolves as dns.lookup does and refuses when any address is one a
   * redirect may not go to.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const done = callback as (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return done(err, []);
      void (async () => {
        for (const a of addresses) {
          const why = await this.addressRefusal(a.address);
          if (why) throw new RedirectRefusedError(`${hostname}: ${why}`);
        }
      })().then(
        () => {
          if (options.all) done(null, addresses);
          else done(null, addresses[0]?.address ?? '', addresses[0]?.family);
        },
        (e: unknown) => done(e as NodeJS.ErrnoException, []),
      );
    });
  };
}
