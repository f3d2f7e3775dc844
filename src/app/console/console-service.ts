/**
 * The web console's service (http/console-service.ts's ConsoleService), built from what
 * compose.ts has at hand. It keeps the repository index, the traffic timelines, the recent
 * evictions and the jobs' last results in memory; compose feeds it the mirror's events
 * (manifests fetched, evictions) and runs the scheduled prefetch through runPrefetch() so results are kept.
 */
import type { Config } from '../../config/schema.js';
import type { ConsoleService, Eviction, Fill, MayPull, Overview } from '../../http/console-service.js';
import type { PrefetchReport } from '../../jobs/prefetch.js';
import type { AuditLog } from '../../logging/audit-log.js';
import type { Logger } from '../../logging/logger.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { PullThrough } from '../../mirror/pull-through.js';
import type { PushService } from '../../mirror/push-service.js';
import { imageTarget } from '../../mirror/router.js';
import { Digest } from '../../oci/digest.js';
import { NameInvalidError } from '../../oci/errors.js';
import { parseImageReference } from '../../oci/reference.js';
import type { AccessTimes } from '../../storage/access-times.js';
import type { Store } from '../../storage/store.js';
import type { UpstreamClient } from '../../upstream/client.js';
import { imageDetail, parseRef } from './image-details.js';
import { IndexClient } from './index-client.js';
import { MaintenanceJobs, recentBundles } from './maintenance.js';
import { PrefetchTracker } from './prefetch-status.js';
import { describeRepository, readCounts, UpstreamWatch } from './sources.js';
import { Timelines, totalsOf } from './timelines.js';

export interface ConsoleDeps {
  config: Config;
  store: Store;
  registry: PullThrough;
  push: PushService;
  metrics: Metrics;
  accessTimes: AccessTimes;
  /** Read on each use: a reload may replace the clients. */
  upstreams: ReadonlyMap<string, UpstreamClient>;
  audit?: AuditLog;
  /** Set when the store is served read-only. */
  readOnly?: boolean;
  /** compose.ts's prefetch: the configured list, or the given references. */
  prefetch(images?: readonly string[], opts?: { pin?: boolean }): Promise<PrefetchReport>;
  logger: Logger;
  /** How often the index walks the store for other processes' changes (default 5 minutes). */
  rescanMs?: number;
}

export interface RunningConsole extends ConsoleService {
  /** Starts the background work: the first walk of the store, sampling, rescans. */
  start(): void;
  stop(): Promise<void>;
  /** Something outside the push path wrote to `name` (a manifest fetched, an archive uploaded): read it again soon. */
  changed(name: string): void;
  /** Eviction removed an image (the Evictor's per-image callback). */
  evicted(name: string, digest: string, bytes: number): void;
  /** The scheduled prefetch: runs the list with its results recorded. */
  runPrefetch(): Promise<PrefetchReport>;
}

const MAX_EVICTIONS = 50;
const SAMPLE_MS = 60_000;

function bad(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

function digestOf(text: string): Digest {
  const d = Digest.tryParse(text);
  if (!d) throw bad(`digest must be a digest such as sha256:<64 hex>, not ${JSON.stringify(text.slice(0, 80))}`);
  return d;
}

export function createConsoleService(deps: ConsoleDeps): RunningConsole {
  const { config, store, registry, push, metrics, accessTimes, audit, logger } = deps;
  const log = logger.child({ component: 'console' });
  const index = new IndexClient({ config, accessTimes, describe: (n) => describeRepository(registry, n), logger: log, rescanMs: deps.rescanMs ?? 300_000 });
  const timelines = new Timelines();
  const upstreams = new UpstreamWatch(() => deps.upstreams);
  const evictions: Eviction[] = [];
  // After a whole run, the prefetched (and pinned) images are read into the index at once.
  const prefetch = new PrefetchTracker(config, (images, opts) => deps.prefetch(images, opts).finally(() => {
    if (!images) void index.scan().catch(() => undefined);
  }), log, !deps.readOnly);
  const jobs = new MaintenanceJobs({ store, logger: log, audit, abandonAfter: config.push.abandonAfter, changed: (n) => index.changed(n) });
  const timers: NodeJS.Timeout[] = [];
  let sampling: Promise<void> = Promise.resolve();

  /** One reading of the counters at a time, so deltas are never counted twice. */
  const sample = (): Promise<void> => {
    sampling = sampling.then(async () => timelines.sample(Date.now(), await readCounts(metrics, deps.upstreams))).catch((e: unknown) => log.warn({ err: e }, 'could not read the counters'));
    return sampling;
  };

  const fills = (may: MayPull): Fill[] =>
    registry.liveFills().flatMap((f) => {
      const repository = f.repositories.find(may);
      if (repository === undefined) return [];
      return [{ id: `${f.upstream}/${f.digest}`, repository, digest: f.digest, size: f.size ?? null, received: f.received, startedAt: f.startedAt, upstream: f.upstream }];
    });

  const visibleEvictions = (may: MayPull) => evictions.filter((e) => may(e.repository));

  const storeTotals = async () => {
    const [bytes, blobs] = await Promise.all([metrics.storeBytes.get(), metrics.storeBlobs.get()]);
    return { bytes: bytes.values[0]?.value ?? 0, blobs: blobs.values[0]?.value ?? 0 };
  };

  const service: RunningConsole = {
    start: () => {
      push.onChange = (name) => index.changed(name);
      // An image served for the first time may be one another process stored (a fleet replica, an import).
      accessTimes.onNew = (name) => index.changed(name);
      upstreams.watch();
      void sample();
      // The index is built on the console's first use, in its worker thread, which rescans.
      const t1 = setInterval(() => void sample(), SAMPLE_MS);
      t1.unref();
      timers.push(t1);
    },
    stop: async () => {
      for (const t of timers) clearInterval(t);
      accessTimes.onNew = undefined;
      await Promise.allSettled([jobs.settle(), prefetch.settle(), sampling]);
      await index.stop();
    },
    changed: (name) => index.changed(name),
    evicted: (name, digest, bytes) => {
      evictions.unshift({ at: Date.now(), repository: name, digest, bytes });
      evictions.length = Math.min(evictions.length, MAX_EVICTIONS);
      index.changed(name);
    },
    runPrefetch: () => prefetch.run(),

    overview: async (may): Promise<Overview> => {
      await sample();
      const now = Date.now();
      const hour = timelines.hour.series(now);
      const day = timelines.day.series(now);
      const maxSize = deps.readOnly ? undefined : config.storage.maxSize;
      return {
        store: { ...(await storeTotals()), ...(await index.totals()), maxSize: maxSize ?? null, readOnly: deps.readOnly === true },
        traffic: { hour, day },
        totals: { hour: totalsOf(hour), day: totalsOf(day) },
        upstreams: upstreams.states(),
        fills: fills(may),
        evictions: visibleEvictions(may),
      };
    },
    fills,
    repositories: (query, may) => index.list(query, may),
    repository: (name) => index.detail(name),
    image: (name, ref) => imageDetail(store, index, accessTimes, name, ref),
    deleteEnabled: () => config.storage.delete.enabled,
    deleteImage: async (name, reference, actor) => {
      const ref = parseRef(reference);
      // The registry's own delete path: storage.delete.enabled, the same checks and log line.
      await push.deleteManifest({ storeName: name, local: true }, ref);
      if (ref.kind === 'digest') accessTimes.forget(name, ref.digest.toString());
      await audit?.record({ audit: 'delete', ...actor, name, stored: name, kind: ref.kind === 'tag' ? 'tag' : 'manifest', reference });
      await index.refresh(name).catch(() => undefined);
    },
    pin: async (name, digest) => {
      const d = digestOf(digest);
      if (!(await store.links.hasRevision(name, d))) throw bad(`${name} holds no manifest ${d.toString()}`);
      await store.pins.pin(name, d);
      index.setPinned(name, d.toString(), true);
    },
    unpin: async (name, digest) => {
      const d = digestOf(digest);
      await store.pins.unpin(name, d);
      index.setPinned(name, d.toString(), false);
    },
    prefetchStatus: () => prefetch.status(),
    storeNameOf: async (image) => {
      let r;
      try {
        r = parseImageReference(image, config.defaultUpstream);
      } catch (e) {
        throw new NameInvalidError(`invalid image reference ${JSON.stringify(image.slice(0, 300))}: ${(e as Error).message}`);
      }
      return (await registry.resolve(imageTarget(r, config.defaultUpstream))).storeName;
    },
    prefetchOne: async (image, opts) => {
      const r = await prefetch.one(image, opts);
      const name = await service.storeNameOf(image).catch(() => undefined);
      if (name !== undefined) index.changed(name);
      await index.reloadPins().catch(() => undefined);
      return r;
    },
    prefetchAll: () => prefetch.start(),
    maintenance: async (may, administer) => {
      const file = config.audit.file;
      return {
        // Reports name repositories and digests store-wide: for administrators only.
        gc: { running: jobs.gcRunning, last: administer || !jobs.lastGc ? jobs.lastGc : { ...jobs.lastGc, report: null } },
        verify: { running: jobs.verifyRunning, last: administer || !jobs.lastVerify ? jobs.lastVerify : { at: jobs.lastVerify.at, report: null } },
        auditEnabled: file !== undefined && file !== '-',
        bundles: administer ? await recentBundles(file) : [],
        evictions: visibleEvictions(may),
      };
    },
    gc: (opts) => jobs.gc(opts),
    verify: () => jobs.verify(),
  };
  return service;
}
