/**
 * The one place that constructs concrete classes and wires them together.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { AccessControl } from '../auth/access-control.js';
import { PushService, type PushOptions } from '../mirror/push-service.js';
import { Evictor, storeTotals } from '../jobs/evict.js';
import { Metrics } from '../metrics/metrics.js';
import { AccessTimes } from '../storage/access-times.js';
import { access as fsAccess, constants } from 'node:fs/promises';
import type { Logger } from '../logging/logger.js';
import { Prefetcher, schedulePrefetch, type PrefetchProgress, type PrefetchReport } from '../jobs/prefetch.js';
import { MirrorRegistry } from '../mirror/mirror-registry.js';
import { UpstreamPolicy } from '../mirror/policy.js';
import { Router } from '../mirror/router.js';
import { UpstreamClient } from '../upstream/client.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { createStore, prepareStore } from './store.js';
import { Fleet } from '../mirror/fleet.js';
import { PeerClient } from '../upstream/peer-client.js';

export interface Airlock {
  app: FastifyInstance;
  store: RegistryStore;
  registry: MirrorRegistry;
  push: PushService;
  metrics: Metrics;
  /** Last-served times of images (eviction, du). */
  accessTimes: AccessTimes;
  /** Present when storage.maxSize is set. */
  evictor?: Evictor;
  /** A separate listener for /metrics (metrics.listen); serve starts it. */
  metricsApp?: FastifyInstance;
  /** The fleet port (fleet.listen), where other replicas read fills; serve starts it. */
  fleetApp?: FastifyInstance;
  fleet?: Fleet;
  upstreams: Map<string, UpstreamClient>;
  config: Config;
  /** Runs the prefetch list once (or the given references instead). */
  prefetch(images?: readonly string[], onProgress?: (p: PrefetchProgress) => void): Promise<PrefetchReport>;
  /** Starts the jobs serve runs on a schedule (prefetch, the sweep of abandoned uploads). close() stops them. */
  startSchedules(): void;
  /**
   * SIGHUP: applies a new configuration (or, without one, reads the TLS and htpasswd files
   * again). Everything is prepared first and swapped in only when all of it worked, so a bad
   * file changes nothing. Resolves with the keys that need a restart to change.
   */
  reload(next?: Config): Promise<string[]>;
  close(): Promise<void>;
}

export { StoreNotWritableError, createStore, prepareStore } from './store.js';

/**
 * `serve: true` joins the fleet (fleet.*): only a serving process has the fleet port that a lease
 * sends other replicas to. A job (airlock prefetch) on a fleet's bucket fetches on its own.
 */
export async function createAirlock(config: Config, logger: Logger, opts: { serve?: boolean } = {}): Promise<Airlock> {
  const store = await createStore(config);
  await prepareStore(config, store.driver);
  const upstreams = await createUpstreams(config, logger);
  const router = new Router(upstreams, config.defaultUpstream, config.push.repositories);
  const metrics = new Metrics(upstreams);
  const accessTimes = new AccessTimes(store.driver);
  await accessTimes.load();
  const fleetConfig = opts.serve ? config.fleet : undefined;
  const peers = fleetConfig ? new PeerClient(fleetConfig.secret) : undefined;
  const fleet = fleetConfig && peers
    ? new Fleet(store, peers, { advertise: fleetConfig.advertise, leaseTTL: fleetConfig.leaseTTL }, logger.child({ component: 'fleet' }))
    : undefined;
  let evictor: Evictor | undefined;
  let evictSoon: NodeJS.Timeout | undefined;
  const registry: MirrorRegistry = new MirrorRegistry(
    store,
    router,
    { tagTTL: config.cache.tagTTL, maxManifestSize: config.http.maxManifestSize, defaultPageSize: config.http.maxPageEntries, maxResumes: config.cache.maxResumes, redirect: config.storage.redirect, policy: UpstreamPolicy.fromConfig(config) },
    logger,
    {
      onManifest: (outcome) => metrics.cache.inc({ kind: 'manifest', outcome }),
      onBlob: (outcome) => metrics.cache.inc({ kind: 'blob', outcome }),
      onFill: (outcome, bytes) => {
        // A fill with no room under storage.maxSize still served its clients: done, not stored.
        metrics.fills.inc({ outcome: outcome === 'failed' ? 'failed' : 'done' });
        if (outcome === 'not_stored') metrics.fillsNotStored.inc();
        if (outcome === 'done') {
          metrics.storeBytes.inc(bytes);
          // A store that grew is checked against its limit a second after the last fill of a
          // burst (a pull's blobs arrive close together), so a check sees whole images; under
          // steady load the minute's check still runs.
          if (evictor) {
            clearTimeout(evictSoon);
            evictSoon = setTimeout(() => {
              evictSoon = undefined;
              void runEviction();
            }, 1000);
            evictSoon.unref();
          }
        }
      },
      onDigestMismatch: () => metrics.digestMismatches.inc(),
      onManifestServed: (name, digest) => accessTimes.touch(name, digest.toString()),
      onPolicyDenial: (upstream, mode) => metrics.policyDenials.inc({ upstream, mode }),
    },
    fleet,
  );
  metrics.countFillsWith(() => registry.fillsInFlight);
  if (fleet) metrics.watchFleet(fleet.stats);
  const maxSize = config.storage.maxSize;
  if (maxSize !== undefined) {
    metrics.storeCeiling(maxSize);
    evictor = new Evictor(
      store,
      accessTimes,
      {
        maxSize,
        evictAt: config.storage.evictAt,
        evictTo: config.storage.evictTo,
        // Only what can be fetched again: names that route to an upstream, resolved as a request
        // for the stored name would be (never a local name, pushed or imported).
        evictable: async (repo) => {
          const r = await registry.resolve({ name: repo }).catch(() => undefined);
          return r !== undefined && r.storeName === repo && !r.local && r.upstream !== undefined;
        },
        busy: () => registry.inUseDigests(),
        extraBytes: () => push.openUploadBytes(),
        recentMs: config.storage.evictMinAge,
      },
      logger.child({ job: 'evict' }),
      (images, bytes) => {
        metrics.evictions.inc(images);
        metrics.evictedBytes.inc(bytes);
      },
    );
    // maxSize is a ceiling: fills (and manifests) get their room from it before they commit.
    registry.space = evictor;
  }
  const runEviction = async () => {
    try {
      await accessTimes.flush();
      const r = await evictor?.check();
      if (r) metrics.storeBytes.set(r.after);
    } catch (e) {
      logger.error({ err: e }, 'eviction failed');
    }
  };
  const push = new PushService(store, pushOptions(config), logger.child({ component: 'push' }));
  let access = config.auth ? await AccessControl.load(config.auth, logger.child({ component: 'auth' })) : undefined;
  const https = config.tls ? await readTls(config.tls) : undefined;
  if (https) metrics.tlsCertExpires(https.notAfter);
  // Loaded here, not at the top: jobs that only need the registry skip the HTTP stack's modules.
  const { buildApp, addMetricsRoute, addReadinessRoute } = await import('../http/app.js');
  const readiness = readinessCheck(config.storage.root, upstreams);
  const app = buildApp({
    registry, push, access: () => access, https, logger, metrics, readiness,
    metricsElsewhere: config.metrics.listen !== undefined,
    maxPageEntries: config.http.maxPageEntries,
    bodyLimit: config.http.maxManifestSize,
    bodyRate: { minRate: config.http.minBodyRate, windowMs: config.http.bodyRateWindow },
  });
  let metricsApp: FastifyInstance | undefined;
  if (config.metrics.listen) {
    const Fastify = (await import('fastify')).default;
    metricsApp = Fastify({ logger: false });
    addMetricsRoute(metricsApp, metrics);
    // The operators' port: readiness with its details.
    addReadinessRoute(metricsApp, readiness, async () => true);
  }
  let fleetApp: FastifyInstance | undefined;
  if (fleetConfig) {
    const { buildFleetApp } = await import('../http/fleet-app.js');
    fleetApp = buildFleetApp(registry, fleetConfig.secret, logger.child({ component: 'fleet' }));
  }
  const prefetch = (images?: readonly string[], onProgress?: (p: PrefetchProgress) => void) =>
    new Prefetcher(registry, { ...Prefetcher.options(config.prefetch, config.defaultUpstream), onProgress }, logger.child({ job: 'prefetch' }))
      .run(images ?? config.prefetch.images)
      .then((r) => {
        for (const x of r.results) metrics.prefetchImages.inc({ outcome: x.outcome });
        return r;
      });
  const stops: Array<() => Promise<void>> = [];
  /** The configuration in force (reload replaces what it can apply live). */
  let current = config;
  return {
    app,
    store,
    registry,
    push,
    metrics,
    accessTimes,
    evictor,
    metricsApp,
    fleetApp,
    fleet,
    upstreams,
    config,
    prefetch,
    startSchedules: () => {
      const schedule = config.prefetch.schedule;
      if (schedule !== undefined && config.prefetch.images.length > 0) stops.push(schedulePrefetch(() => prefetch(), schedule, logger.child({ job: 'prefetch' })));
      stops.push(scheduleUploadSweep(push, Math.min(config.push.abandonAfter, 3_600_000), logger));
      // Access times reach the disk once a minute; the limit is checked as often (and after fills).
      stops.push(every(60_000, async () => {
        await accessTimes.flush();
        if (evictor) await runEviction();
      }, logger));
      // The store's size and blob count for the metrics, at start and every 10 minutes.
      const totals = async () => {
        const t = await storeTotals(store);
        metrics.storeBytes.set(t.bytes);
        metrics.storeBlobs.set(t.blobs);
      };
      void totals().catch((e: unknown) => logger.warn({ err: e }, 'could not measure the store'));
      stops.push(every(600_000, totals, logger));
    },
    reload: async (next?: Config) => {
      const target = next ?? current;
      const restart: string[] = [];
      if (next) {
        if (!same(next.listen, current.listen)) restart.push('listen');
        if (!same(next.storage, current.storage)) restart.push('storage');
        if (!same(next.http, current.http)) restart.push('http');
        if (!same(next.metrics, current.metrics)) restart.push('metrics');
        if ((next.tls === undefined) !== (current.tls === undefined)) restart.push('tls (turning HTTPS on or off)');
        if (!same(next.prefetch, current.prefetch)) restart.push('prefetch');
      }
      // Prepare everything first: any failure leaves the running configuration untouched.
      const tlsFiles = target.tls && current.tls ? await readTls(target.tls) : undefined;
      const nextAccess = target.auth ? await AccessControl.load(target.auth, logger.child({ component: 'auth' })) : undefined;
      // The allow and deny lists are not the clients' business: changing them keeps the clients (and their tokens).
      const nextPolicy = next ? UpstreamPolicy.fromConfig(next) : undefined;
      const upstreamsChanged = next !== undefined && (!same(withoutLists(next.upstreams), withoutLists(current.upstreams)) || next.defaultUpstream !== current.defaultUpstream || !same(next.push.repositories, current.push.repositories));
      const nextUpstreams = upstreamsChanged && next ? await createUpstreams(next, logger) : undefined;
      // Swap.
      if (tlsFiles) {
        (app.server as unknown as { setSecureContext(o: object): void }).setSecureContext({ cert: tlsFiles.cert, key: tlsFiles.key });
        metrics.tlsCertExpires(tlsFiles.notAfter);
      }
      access = nextAccess;
      if (next) {
        logger.level = next.log.level;
        const r = nextUpstreams ? new Router(nextUpstreams, next.defaultUpstream, next.push.repositories) : registry.router;
        registry.reconfigure(r, { tagTTL: next.cache.tagTTL, maxManifestSize: current.http.maxManifestSize, defaultPageSize: current.http.maxPageEntries, maxResumes: next.cache.maxResumes, redirect: current.storage.redirect, policy: nextPolicy });
        push.reconfigure(pushOptions({ ...next, storage: current.storage }));
        if (nextUpstreams) {
          const old = [...upstreams.values()];
          for (const [k, v] of nextUpstreams) v.keepRateLimit(upstreams.get(k));
          upstreams.clear();
          for (const [k, v] of nextUpstreams) upstreams.set(k, v);
          metrics.watchUpstreams(upstreams);
          // Fills in progress finish on the old clients; close them once those are done.
          setTimeout(() => void Promise.all(old.map((u) => u.close())), 10 * 60_000).unref();
        }
        current = next;
      }
      return restart;
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
      clearTimeout(evictSoon);
      await metricsApp?.close();
      await accessTimes.flush().catch((e: unknown) => logger.warn({ err: e }, 'could not save access times'));
      await registry.abortFills();
      if (fleetApp) {
        // Other replicas following a fill of ours resume elsewhere (their leases take over).
        const closing = fleetApp.close();
        fleetApp.server.closeAllConnections();
        await closing;
      }
      await stopping;
      await Promise.all([...upstreams.values()].map((u) => u.close()));
      await peers?.close();
      store.driver.close?.();
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

function pushOptions(config: Config): PushOptions {
  const { maxBlobSize, maxUploads, abandonAfter } = config.push;
  const limits = [maxBlobSize, config.storage.maxSize].filter((v): v is number => v !== undefined);
  return { deleteEnabled: config.storage.delete.enabled, abandonAfter, maxUploads, maxBlobSize: limits.length > 0 ? Math.min(...limits) : undefined };
}

/**
 * TLS files, checked to form a usable key pair before they replace anything, and when the
 * certificate (the first in tls.cert: the server's own) expires, in Unix seconds.
 */
async function readTls(tls: NonNullable<Config['tls']>): Promise<{ cert: Buffer; key: Buffer; notAfter: number }> {
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
  return { ...files, notAfter: Date.parse(new X509Certificate(files.cert).validTo) / 1000 };
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

/** Runs `fn` every `ms` (one run at a time); returns the stop function, which waits for a run in progress. */
function every(ms: number, fn: () => Promise<void>, logger: Logger): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(fn).catch((e: unknown) => logger.error({ err: e }, 'periodic job failed'));
  }, ms);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** /readyz: the store root writable (checked at most every 5 s), upstreams probed (every 10 s). */
function readinessCheck(root: string, upstreams: Map<string, UpstreamClient>) {
  let store: { at: number; value: string } | undefined;
  let probes: { at: number; value: Promise<Record<string, string>> } | undefined;
  return async () => {
    const now = Date.now();
    if (!store || now - store.at > 5000) {
      let value = 'writable';
      try {
        await fsAccess(root, constants.W_OK);
      } catch (e) {
        value = `not writable: ${(e as Error).message}`;
      }
      store = { at: now, value };
    }
    if (!probes || now - probes.at > 10_000) {
      probes = {
        at: now,
        value: Promise.all([...upstreams].map(async ([name, u]) => [name, await u.probe()] as const)).then((e) => Object.fromEntries(e)),
      };
    }
    return { ready: store.value === 'writable', store: store.value, upstreams: await probes.value };
  };
}

/** The upstreams' settings but their allow and deny lists (which the policy, not the clients, applies). */
function withoutLists(upstreams: Config['upstreams']): Record<string, unknown> {
  return Object.fromEntries(Object.entries(upstreams).map(([k, { allow: _allow, deny: _deny, ...rest }]) => [k, rest]));
}

/** Whether two configuration values (plain data from YAML) are equal. */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
