/**
 * SIGHUP: applies a new configuration (or, without one, reads the TLS and htpasswd files
 * again). Everything is prepared first and swapped in only when all of it worked, so a bad file
 * changes nothing.
 */
import { AccessControl, type FailedLoginHook } from '../auth/access-control.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PullThrough } from '../mirror/pull-through.js';
import type { PushService } from '../mirror/push-service.js';
import { Router } from '../mirror/router.js';
import type { UpstreamClient } from '../upstream/client.js';
import { registryOptions, pushOptions } from './options.js';
import { readTls } from './tls.js';
import { createUpstreams, withoutLists } from './upstreams.js';

export interface ReloadParts {
  /** Serves new TLS files from the next handshake on (the registry port's server). */
  setSecureContext(files: { cert: Buffer; key: Buffer }): void;
  registry: PullThrough;
  push: PushService;
  upstreams: Map<string, UpstreamClient>;
  metrics: Metrics;
  logger: Logger;
  failedLogin?: FailedLoginHook;
}

export class Reloader {
  /** The configuration in force (reload replaces what it can apply live). */
  #current: Config;
  #access: AccessControl | undefined;

  constructor(config: Config, access: AccessControl | undefined, private readonly parts: ReloadParts) {
    this.#current = config;
    this.#access = access;
  }

  /** Logins and permissions in force (read per request). */
  get access(): AccessControl | undefined {
    return this.#access;
  }

  /** Resolves with the keys that changed but need a restart to take effect. */
  async reload(next?: Config): Promise<string[]> {
    const { setSecureContext, registry, push, upstreams, metrics, logger, failedLogin } = this.parts;
    const current = this.#current;
    const target = next ?? current;
    const restart = next ? restartKeys(current, next) : [];
    // Prepare everything first: any failure leaves the running configuration untouched.
    const tlsFiles = target.tls && current.tls ? await readTls(target.tls) : undefined;
    const nextAccess = target.auth ? await AccessControl.load(target.auth, logger.child({ component: 'auth' }), failedLogin) : undefined;
    // The allow and deny lists are not the clients' business: changing them keeps the clients (and their tokens).
    const upstreamsChanged = next !== undefined && (!same(withoutLists(next.upstreams), withoutLists(current.upstreams)) || next.defaultUpstream !== current.defaultUpstream || !same(next.push.repositories, current.push.repositories));
    const nextUpstreams = upstreamsChanged && next ? await createUpstreams(next, logger) : undefined;
    // Swap.
    if (tlsFiles) {
      setSecureContext({ cert: tlsFiles.cert, key: tlsFiles.key });
      metrics.tlsCertExpires(tlsFiles.notAfter);
    }
    this.#access = nextAccess;
    if (!next) return restart;
    logger.level = next.log.level;
    const router = nextUpstreams ? new Router(nextUpstreams, next.defaultUpstream, next.push.repositories) : registry.router;
    // Keys that need a restart keep their running values.
    const live = { ...next, storage: current.storage, http: current.http };
    registry.reconfigure(router, registryOptions(live));
    push.reconfigure(pushOptions(live));
    if (nextUpstreams) {
      const old = [...upstreams.values()];
      for (const [k, v] of nextUpstreams) v.keepRateLimit(upstreams.get(k));
      upstreams.clear();
      for (const [k, v] of nextUpstreams) upstreams.set(k, v);
      metrics.watchUpstreams(upstreams);
      // Fills in progress finish on the old clients; close them once those are done.
      setTimeout(() => void Promise.all(old.map((u) => u.close())), 10 * 60_000).unref();
    }
    this.#current = next;
    return restart;
  }
}

function restartKeys(current: Config, next: Config): string[] {
  const restart: string[] = [];
  for (const key of ['listen', 'storage', 'http', 'metrics', 'ui'] as const) if (!same(next[key], current[key])) restart.push(key);
  if ((next.tls === undefined) !== (current.tls === undefined)) restart.push('tls (turning HTTPS on or off)');
  if (!same(next.prefetch, current.prefetch)) restart.push('prefetch');
  if (!same(next.audit, current.audit)) restart.push('audit');
  return restart;
}

/** Whether two configuration values (plain data from YAML) are equal. */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
