/**
 * The composition root: the one place that constructs concrete classes and wires them together.
 * What happens later to them lives beside it: reload.ts (SIGHUP), schedules.ts, shutdown.ts,
 * readiness.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { AccessControl, type FailedLoginHook } from '../auth/access-control.js';
import { AuditLog } from '../logging/audit-log.js';
import { PushService } from '../mirror/push-service.js';
import { Evictor } from '../jobs/evict.js';
import { Metrics } from '../metrics/metrics.js';
import { AccessTimes } from '../storage/access-times.js';
import type { Logger } from '../logging/logger.js';
import { Prefetcher, type PrefetchProgress, type PrefetchReport } from '../jobs/prefetch.js';
import { PullThrough, type MirrorEvents } from '../mirror/pull-through.js';
import { Router } from '../mirror/router.js';
import type { UpstreamClient } from '../upstream/client.js';
import type { Store } from '../storage/store.js';
import { Sessions } from '../auth/sessions.js';
import { airlockVersion } from '../runtime/version.js';
import { archiveService } from './archive-service.js';
import type { ArchiveService } from '../http/plugins/archives.js';
import { createConsoleService, type RunningConsole } from './console/console-service.js';
import { openStore } from './store.js';
import { ReadOnlyStoreError, readOnlyMessage, type ReadOnlyReason } from '../storage/read-only-driver.js';
import { Fleet } from '../mirror/fleet.js';
import { PeerClient } from '../upstream/peer-client.js';
import { pushOptions, registryOptions } from './options.js';
import { readinessCheck } from './readiness.js';
import { Reloader } from './reload.js';
import { EvictionRunner, startSchedules } from './schedules.js';
import { shutdown } from './shutdown.js';
import { readTls } from './tls.js';
import { createUpstreams } from './upstreams.js';

export interface Airlock {
  app: FastifyInstance;
  store: Store;
  registry: PullThrough;
  push: PushService;
  metrics: Metrics;
  /** Last-served times of images (eviction, du). */
  accessTimes: AccessTimes;
  /** Present when storage.maxSize is set (and the store is writable). */
  evictor?: Evictor;
  /** Why the store is served read-only (storage.readOnly, a read-only root); absent when writable. */
  readOnly?: ReadOnlyReason;
  /** A separate listener for /metrics (metrics.listen); serve starts it. */
  metricsApp?: FastifyInstance;
  /** The fleet port (fleet.listen), where other replicas read fills; serve starts it. */
  fleetApp?: FastifyInstance;
  fleet?: Fleet;
  upstreams: Map<string, UpstreamClient>;
  config: Config;
  /** audit.file, when set. */
  audit?: AuditLog;
  /** SIGHUP, before anything else: reopen the audit file (logrotate), whether or not the configuration reloads. */
  reopenLogs(): Promise<void>;
  /** Runs the prefetch list once (or the given references instead). */
  prefetch(images?: readonly string[], onProgress?: (p: PrefetchProgress) => void, opts?: { pin?: boolean }): Promise<PrefetchReport>;
  /** Starts the jobs serve runs on a schedule (prefetch, the sweep of abandoned uploads). close() stops them. */
  startSchedules(): void;
  /**
   * SIGHUP: applies a new configuration (or, without one, reads the TLS and htpasswd files
   * again); a bad file changes nothing. Resolves with the keys that need a restart to change.
   */
  reload(next?: Config): Promise<string[]>;
  close(): Promise<void>;
}

export { StoreNotReadableError, StoreNotWritableError, createStore, openStore, prepareStore } from './store.js';
export { createUpstreams } from './upstreams.js';

/**
 * `serve: true` joins the fleet (fleet.*): only a serving process has the fleet port that a lease
 * sends other replicas to. A job (airlock prefetch) on a fleet's bucket fetches on its own.
 */
export async function createAirlock(config: Config, logger: Logger, opts: { serve?: boolean } = {}): Promise<Airlock> {
  const { store, readOnly } = await openStore(config);
  if (readOnly && opts.serve) logReadOnly(logger, readOnly, config);
  const upstreams = await createUpstreams(config, logger);
  const router = new Router(upstreams, config.defaultUpstream, config.push.repositories);
  const metrics = new Metrics(upstreams, { storeReadOnly: readOnly !== undefined });
  const audit = config.audit.file !== undefined ? await AuditLog.open(config.audit.file, logger, () => metrics.auditWriteErrors.inc()) : undefined;
  // The user name is the client's text: bounded, never the password.
  const failedLogin: FailedLoginHook | undefined = audit
    ? (user, address, reason) => audit.record({ audit: 'login-failed', ...(user !== undefined ? { user: user.slice(0, 256) } : {}), address, reason })
    : undefined;
  // A read-only store's are kept in memory (the console shows them), never written.
  const accessTimes = new AccessTimes(store.driver, { persist: !readOnly });
  await accessTimes.load();
  // A read-only store takes no leases: this replica serves what the bucket holds, on its own.
  const fleetConfig = opts.serve && !readOnly ? config.fleet : undefined;
  const peers = fleetConfig ? new PeerClient(fleetConfig.secret) : undefined;
  const fleet = fleetConfig && peers
    ? new Fleet(store, peers, { advertise: fleetConfig.advertise, leaseTTL: fleetConfig.leaseTTL }, logger.child({ component: 'fleet' }))
    : undefined;
  // The web console (ui.enabled): fed the mirror's pulls and evictions, created once the rest is.
  let consoleService: RunningConsole | undefined;
  const registry: PullThrough = new PullThrough(store, router, registryOptions(config), logger, mirrorEvents(metrics, accessTimes, audit, () => evictions.soon(), (name) => consoleService?.changed(name)), fleet);
  registry.storeOnly = readOnly !== undefined;
  metrics.countFillsWith(() => registry.fillsInFlight);
  if (fleet) metrics.watchFleet(fleet.stats);
  const push = new PushService(store, pushOptions(config), logger.child({ component: 'push' }));
  let evictor: Evictor | undefined;
  // A read-only store never grows: no ceiling to keep.
  const maxSize = readOnly ? undefined : config.storage.maxSize;
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
      async (name, digest, bytes) => {
        consoleService?.evicted(name, digest, bytes);
        await audit?.record({ audit: 'remove', by: 'evict', kind: 'image', stored: name, digest, bytes });
      },
    );
    // maxSize is a ceiling: fills (and manifests) get their room from it before they commit.
    registry.space = evictor;
  }
  // Fills (reported through the events above) ask it for a check soon after the store grew.
  const evictions = new EvictionRunner(evictor, accessTimes, metrics, logger);
  const access = config.auth ? await AccessControl.load(config.auth, logger.child({ component: 'auth' }), failedLogin) : undefined;
  const reloader = new Reloader(config, access, {
    setSecureContext: (files) => (app.server as unknown as { setSecureContext(o: object): void }).setSecureContext(files),
    registry, push, upstreams, metrics, logger, failedLogin,
  });
  const https = config.tls ? await readTls(config.tls) : undefined;
  if (https) metrics.tlsCertExpires(https.notAfter);
  // Loaded here, not at the top: jobs that only need the registry skip the HTTP stack's modules.
  const { buildApp, addMetricsRoute, addReadinessRoute } = await import('../http/app.js');
  if (config.ui.enabled) {
    consoleService = createConsoleService({
      config, store, registry, push, metrics, accessTimes, upstreams, audit, logger,
      readOnly: readOnly !== undefined,
      prefetch: (images, opts) => prefetch(images, undefined, opts),
    });
  }
  // Read-only, the upstreams are never asked: readiness is the store's alone.
  const readiness = readinessCheck(config.storage.root, readOnly ? new Map() : upstreams, readOnly);
  const app = buildApp({
    registry, push, access: () => reloader.access, https, logger, metrics, readiness, audit,
    readOnly: readOnly ? readOnlyMessage(readOnly, 'pushes and deletes are refused') : undefined,
    metricsElsewhere: config.metrics.listen !== undefined,
    maxPageEntries: config.http.maxPageEntries,
    bodyLimit: config.http.maxManifestSize,
    bodyRate: { minRate: config.http.minBodyRate, windowMs: config.http.bodyRateWindow },
    ui: config.ui.enabled
      ? {
        path: config.ui.path,
        sessions: new Sessions(config.ui.sessionIdle),
        version: airlockVersion(),
        deletes: config.storage.delete.enabled,
        archives: consoleSees(archiveService(store, config, logger), () => consoleService),
        service: consoleService,
        defaultRegistry: config.defaultUpstream,
      }
      : undefined,
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
  const prefetch = async (images?: readonly string[], onProgress?: (p: PrefetchProgress) => void, opts: { pin?: boolean } = {}) => {
    if (readOnly) throw new ReadOnlyStoreError(readOnlyMessage(readOnly, 'prefetch would store images in it; run it against a writable store'));
    return new Prefetcher(registry, { ...Prefetcher.options(config.prefetch, config.defaultUpstream), onProgress, ...opts }, logger.child({ job: 'prefetch' }))
      .run(images ?? config.prefetch.images)
      .then((r) => {
        for (const x of r.results) metrics.prefetchImages.inc({ outcome: x.outcome });
        return r;
      });
  };
  const stops: Array<() => Promise<void>> = [];
  if (consoleService && opts.serve) {
    // Its first walk of the store runs in the background: start-up does not wait for it.
    consoleService.start();
    const started = consoleService;
    stops.push(() => started.stop());
  }
  return {
    app, store, registry, push, metrics, accessTimes, evictor, readOnly, metricsApp, fleetApp, fleet, upstreams, config, audit, prefetch,
    reopenLogs: async () => {
      try {
        await audit?.reopen();
      } catch (e) {
        logger.error({ err: { message: (e as Error).message } }, 'could not reopen the audit log; still writing to the old file');
      }
    },
    startSchedules: () => {
      stops.push(...startSchedules({ config, store, push, accessTimes, eviction: evictions, metrics, prefetch: () => consoleService?.runPrefetch() ?? prefetch(), logger, readOnly: readOnly !== undefined }));
    },
    reload: (next?: Config) => reloader.reload(next),
    close: () => shutdown({ app, metricsApp, fleetApp, stops, afterClose: () => evictions.cancel(), accessTimes, registry, upstreams, peers, audit, store, logger }),
  };
}

/** What the mirror reports, to the metrics, the access times, eviction and the audit log. */
function mirrorEvents(metrics: Metrics, accessTimes: AccessTimes, audit: AuditLog | undefined, grew: () => void, stored: (name: string) => void): MirrorEvents {
  return {
    onManifest: (outcome) => metrics.cache.inc({ kind: 'manifest', outcome }),
    onBlob: (outcome) => metrics.cache.inc({ kind: 'blob', outcome }),
    onFill: (outcome, bytes) => {
      // A fill with no room under storage.maxSize still served its clients: done, not stored.
      metrics.fills.inc({ outcome: outcome === 'failed' ? 'failed' : 'done' });
      if (outcome === 'not_stored') metrics.fillsNotStored.inc();
      if (outcome === 'done') {
        // Kept current between the scans (schedules.ts) that set both exactly.
        metrics.storeBytes.inc(bytes);
        metrics.storeBlobs.inc();
        grew();
      }
    },
    onDigestMismatch: () => metrics.digestMismatches.inc(),
    // The console reads pulls from these records too: with it on, a pull does no more work.
    onManifestServed: (name, digest, pull, fetched) => {
      accessTimes.touch(name, digest.toString(), Date.now(), pull);
      if (fetched) stored(name);
    },
    onPolicyDenial: (upstream, mode) => metrics.policyDenials.inc({ upstream, mode }),
    onTagMoved: async (m) => {
      await audit?.record({ audit: 'tag-moved', stored: m.storeName, tag: m.tag, upstream: m.upstream, from: m.from.toString(), to: m.to.toString() });
    },
  };
}

/** The one start-up line of a read-only store: why, and what that turns off. */
function logReadOnly(logger: Logger, reason: ReadOnlyReason, config: Config): void {
  const upstreams = Object.keys(config.upstreams);
  const ignored = [
    ...(upstreams.length > 0 ? ['upstreams (misses answer 404, as a plain registry)'] : []),
    ...(config.storage.maxSize !== undefined ? ['storage.maxSize'] : []),
    ...(config.fleet ? ['fleet'] : []),
    ...(config.prefetch.schedule !== undefined ? ['prefetch.schedule'] : []),
  ];
  logger.warn(
    { root: reason.label, reason: reason.why, ...(ignored.length > 0 ? { ignored } : {}) },
    `serving the store read-only (${reason.why}): pulls only; pushes and deletes are refused and nothing is written to it`,
  );
}

/** Archives uploaded over HTTP are listed by the console at once, not at its next rescan. */
function consoleSees(archives: ArchiveService, web: () => RunningConsole | undefined): ArchiveService {
  return {
    ...archives,
    load: async (file, opts) => {
      const r = await archives.load(file, opts);
      for (const i of r.images) web()?.changed(i.name);
      return r;
    },
  };
}
