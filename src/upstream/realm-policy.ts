/**
 * Where airlock asks for a token ("Token Authentication Specification": the upstream's 401 names
 * a realm). A token request carries the upstream's credentials by Basic, so the realm is checked
 * before anything is sent:
 *  - http(s) only, and https when the upstream is https (a plain-http realm would expose the
 *    password to the network; an http upstream is already on a network the operator trusts);
 *  - with credentials, only the upstream's own host name or a host in upstreams.<host>.tokenHosts.
 * A realm that fails is refused outright, never asked anonymously instead, so a misconfiguration
 * shows as an error rather than as a pull that silently lost its login.
 */

/** Realms a well-known registry uses on a host of its own (Docker Hub's registry and its auth service). */
const BUILT_IN_TOKEN_HOSTS: Readonly<Record<string, readonly string[]>> = {
  'registry-1.docker.io': ['auth.docker.io'],
  'index.docker.io': ['auth.docker.io'],
};

function effectivePort(u: URL): string {
  return u.port || (u.protocol === 'https:' ? '443' : '80');
}

/** Whether `realm` is on a host the upstream's credentials may go to. */
export function isTokenHost(realm: URL, upstream: URL, tokenHosts: readonly string[]): boolean {
  const hostname = realm.hostname.toLowerCase();
  if (hostname === upstream.hostname.toLowerCase()) return true;
  const allowed = [...(BUILT_IN_TOKEN_HOSTS[upstream.hostname.toLowerCase()] ?? []), ...tokenHosts];
  for (const entry of allowed) {
    let e: URL;
    try {
      e = new URL(`${realm.protocol}//${entry}`);
    } catch {
      continue;
    }
    if (e.hostname.toLowerCase() !== hostname) continue;
    // "host" allows any port of it; "host:port" that port only.
    if (!/:\d+$/.test(entry) || effectivePort(e) === effectivePort(realm)) return true;
  }
  return false;
}

/** Why a token request to `realm` must not be made (undefined: make it). */
export function realmRefusal(realm: URL, upstream: URL, opts: { tokenHosts: readonly string[]; credentials: boolean }): string | undefined {
  if (realm.protocol !== 'https:' && realm.protocol !== 'http:') return `the token realm's scheme ${realm.protocol} is not http(s)`;
  if (realm.protocol === 'http:' && upstream.protocol === 'https:') return `the token realm ${realm.origin} is plain http and the upstream is https`;
  if (realm.username || realm.password) return 'the token realm URL carries credentials of its own';
  if (opts.credentials && !isTokenHost(realm, upstream, opts.tokenHosts)) {
    return `the token realm ${realm.host} is not the upstream's host; list it in tokenHosts to send the upstream's credentials there`;
  }
  return undefined;
}
