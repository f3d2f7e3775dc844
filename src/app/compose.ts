/**
 * The one place that constructs concrete classes and wires them together.
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { AccessControl } from '../auth/access-control.js';
import { PushService } from '../mirror/push-service.js';
import type { Logger } from '../logging/logger.js';
import { Prefetcher, schedulePrefetch, type PrefetchProgress, type PrefetchReport } from '../jobs/prefetch.js';
import { MirrorRegistry } from '../mirror/mirror-registry.js';
import { Router } from '../mirror/router.js';
import { UpstreamClient } from '../upstream/client.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { createStore, prepareStore } from './store.js';

export interface Airlock {
  app: FastifyInstance;
  store: RegistryStore;
  registry: MirrorRegistry;
  push: PushService;
  upstreams: Map<string, UpstreamClient>;
  config: Config;
  /** Runs the prefetch list once (or the given references instead). */
  prefetch(images?: readonly string[], onProgress?: (p: PrefetchProgress) => void): Promise<PrefetchReport>;
  /** Starts the jobs serve runs on a schedule (prefetch, the sweep of abandoned uploads). close() stops them. */
  startSchedules(): void;
  /** Reads the TLS files and the htpasswd file again (SIGHUP); a bad file is refused and the old kept. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

export { StoreNotWritableError, createStore, prepareStore } from './store.js';

export async function createAirlock(config: Config, logger: Logger): Promise<Airlock> {
  await prepareStore(config);
  const store = createStore(config);
  const upstreams = await createUpstreams(config, logger);
  const router = new Router(upstreams, config.defaultUpstream, config.push.repositories);
  const registry = new MirrorRegistry(
    store,
    router,
    { tagTTL: config.cache.tagTTL, maxManifestSize: config.http.maxManifestSize, defaultPageSize: config.http.maxPageEntries, maxResumes: config.cache.maxResumes },
    logger,
  );
  const push = new PushService(store, router, { deleteEnabled: config.storage.delete.enabled, abandonAfter: config.push.abandonAfter }, logger.child({ component: 'push' }));
  const access = config.auth ? await AccessControl.load(config.auth, logger.child({ component: 'auth' })) : undefined;
  const https = config.tls ? await readTls(config.tls) : undefined;
  // Loaded here, not at the top: jobs that only need the registry skip the HTTP stack's modules.
  const { buildApp } = await import('../http/app.js');
  const app = buildApp({ registry, push, access, https, logger, maxPageEntries: config.http.maxPageEntries, bodyLimit: config.http.maxManifestSize });
  const prefetch = (images?: readonly string[], onProgress?: (p: PrefetchProgress) => void) =>
    new Prefetcher(registry, { ...Prefetcher.options(config.prefetch, config.defaultUpstream), onProgress }, logger.child({ job: 'prefetch' })).run(images ?? config.prefetch.images);
  const stops: Array<() => Promise<void>> = [];
  return {
    app,
    store,
    registry,
    push,
    upstreams,
    config,
    prefetch,
    startSchedules: () => {
      const every = config.prefetch.schedule;
      if (every !== undefined && config.prefetch.images.length > 0) stops.push(schedulePrefetch(() => prefetch(), every, logger.child({ job: 'prefetch' })));
      stops.push(scheduleUploadSweep(push, Math.min(config.push.abandonAfter, 3_600_000), logger));
    },
    reload: async () => {
      if (config.tls) {
        const files = await readTls(config.tls);
        (app.server as unknown as { setSecureContext(o: object): void }).setSecureContext(files);
      }
      await access?.reload();
    },
    // Stop accepting and let in-flight responses finish (serve.ts bounds the wait), then stop
    // the fills nobody follows any more; their temp files are removed.
    close: async () => {
      const stopping = Promise.all(stops.map((s) => s()));
      // close() ends the connections idle at that moment; one whose response is just finishing
      // becomes idle a moment later and would otherwise linger for the keep-alive timeout.
      const idle = setInterval(() => app.server.closeIdleConnections(), 50);
      try {
        await app.close();
      } finally {
        clearInterval(idle);
      }
      await registry.abortFills();
      await stopping;
      await Promise.all([...upstreams.values()].map((u) => u.close()));
    },
  };
}

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
          insecure: u.insecure,
          concurrency: u.concurrency,
          connectTimeout: u.timeouts.connect,
          readTimeout: u.timeouts.read,
          retries: u.retries,
        },
        logger.child({ upstream: name }),
      ),
    );
  }
  return out;
}

/** TLS files, checked to form a usable key pair before they replace anything. */
async function readTls(tls: NonNullable<Config['tls']>): Promise<{ cert: Buffer; key: Buffer }> {
  const read = async (what: 'cert' | 'key') => {
    try {
      return await readFile(tls[what]);
    } catch (e) {
      throw new Error(`tls.${what}: cannot read ${tls[what]}: ${(e as Error).message}`, { cause: e });
    }
  };
  const files = { cert: await read('cert'), key: await read('key') };
  try {
    createSecureContext(files);
  } catch (e) {
    throw new Error(`tls: ${tls.cert} and ${tls.key} are not a usable certificate and key: ${(e as Error).message}`, { cause: e });
  }
  return files;
}

/** Removes abandoned uploads at start and then every `every` ms; returns the stop function. */
function scheduleUploadSweep(push: PushService, every: number, logger: Logger): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  const run = () => {
    running = push.sweepUploads().catch((e: unknown) => logger.error({ err: e }, 'sweeping abandoned uploads failed'));
  };
  run();
  const timer = setInterval(run, Math.max(1000, every));
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
