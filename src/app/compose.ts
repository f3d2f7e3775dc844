/**
 * The one place that constructs concrete classes and wires them together.
 */
import { access, constants, mkdir, readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { Prefetcher, schedulePrefetch, type PrefetchProgress, type PrefetchReport } from '../jobs/prefetch.js';
import { MirrorRegistry } from '../mirror/mirror-registry.js';
import { Router } from '../mirror/router.js';
import { UpstreamClient } from '../upstream/client.js';
import { FilesystemDriver } from '../storage/filesystem-driver.js';
import { RegistryStore } from '../storage/registry-store.js';

export interface Airlock {
  app: FastifyInstance;
  store: RegistryStore;
  registry: MirrorRegistry;
  upstreams: Map<string, UpstreamClient>;
  config: Config;
  /** Runs the prefetch list once (or the given references instead). */
  prefetch(images?: readonly string[], onProgress?: (p: PrefetchProgress) => void): Promise<PrefetchReport>;
  /** Starts the jobs serve runs on a schedule (prefetch). close() stops them. */
  startSchedules(): void;
  close(): Promise<void>;
}

/** A store root we cannot write to: refused at start-up with one clear line. */
export class StoreNotWritableError extends Error {
  constructor(root: string, cause: unknown) {
    super(`storage.root ${root} is not writable: ${(cause as Error).message}`, { cause });
    this.name = 'StoreNotWritableError';
  }
}

export function createStore(config: Config): RegistryStore {
  const driver = new FilesystemDriver(config.storage.root);
  return new RegistryStore(driver, { maxManifestSize: config.http.maxManifestSize, manifestCacheBytes: config.cache.manifestMemory });
}

/** Creates the root if needed, checks it is writable and removes temp files a killed process left. */
export async function prepareStore(config: Config): Promise<void> {
  const driver = new FilesystemDriver(config.storage.root);
  try {
    await mkdir(driver.root, { recursive: true });
    await access(driver.root, constants.W_OK);
    // Nothing in tmp/ is ever named by a link: what a dead process left there is garbage.
    await driver.cleanTemp();
    await mkdir(driver.tmpDir, { recursive: true });
  } catch (e) {
    throw new StoreNotWritableError(driver.root, e);
  }
}

export async function createAirlock(config: Config, logger: Logger): Promise<Airlock> {
  await prepareStore(config);
  const store = createStore(config);
  const upstreams = await createUpstreams(config, logger);
  const router = new Router(upstreams, config.defaultUpstream);
  const registry = new MirrorRegistry(
    store,
    router,
    { tagTTL: config.cache.tagTTL, maxManifestSize: config.http.maxManifestSize, defaultPageSize: config.http.maxPageEntries, maxResumes: config.cache.maxResumes },
    logger,
  );
  // Loaded here, not at the top: jobs that only need the registry skip the HTTP stack's modules.
  const { buildApp } = await import('../http/app.js');
  const app = buildApp({ registry, logger, maxPageEntries: config.http.maxPageEntries, bodyLimit: config.http.maxManifestSize });
  const prefetch = (images?: readonly string[], onProgress?: (p: PrefetchProgress) => void) =>
    new Prefetcher(registry, { ...Prefetcher.options(config.prefetch, config.defaultUpstream), onProgress }, logger.child({ job: 'prefetch' })).run(images ?? config.prefetch.images);
  const stops: Array<() => Promise<void>> = [];
  return {
    app,
    store,
    registry,
    upstreams,
    config,
    prefetch,
    startSchedules: () => {
      const every = config.prefetch.schedule;
      if (every !== undefined && config.prefetch.images.length > 0) stops.push(schedulePrefetch(() => prefetch(), every, logger.child({ job: 'prefetch' })));
    },
    // Stop accepting and let in-flight responses finish (serve.ts bounds the wait), then stop
    // the fills nobody follows any more; their temp files are removed.
    close: async () => {
      const stopping = Promise.all(stops.map((s) => s()));
      await app.close();
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
