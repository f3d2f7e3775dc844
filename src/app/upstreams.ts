import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { UpstreamClient } from '../upstream/client.js';

/** One client per configured upstream, keyed by the host clients know it by. */
export async function createUpstreams(config: Config, logger: Logger): Promise<Map<string, UpstreamClient>> {
  const out = new Map<string, UpstreamClient>();
  for (const [name, u] of Object.entries(config.upstreams)) {
    let ca: string | undefined;
    if (u.ca) {
      try {
        ca = await readFile(u.ca, 'utf8');
      } catch (e) {
        throw new Error(`upstreams.${name}.ca: cannot read ${u.ca}: ${(e as Error).message}`, { cause: e });
      }
    }
    out.set(
      name,
      new UpstreamClient(
        {
          name,
          url: u.url,
          username: u.username,
          password: u.password,
          ca,
          tokenHosts: u.tokenHosts,
          allowPrivateRedirects: u.allowPrivateRedirects,
          insecure: u.insecure,
          concurrency: u.concurrency,
          connectTimeout: u.timeouts.connect,
          readTimeout: u.timeouts.read,
          retries: u.retries,
          rateLimitReserve: u.rateLimitReserve,
        },
        logger.child({ upstream: name }),
      ),
    );
  }
  return out;
}

/** The upstreams' settings but their allow and deny lists (which the policy, not the clients, applies). */
export function withoutLists(upstreams: Config['upstreams']): Record<string, unknown> {
  return Object.fromEntries(Object.entries(upstreams).map(([k, { allow: _allow, deny: _deny, ...rest }]) => [k, rest]));
}
