/**
 * What serve runs on a clock: the prefetch schedule, the sweep of abandoned uploads, access
 * times to disk and the eviction check, the store's totals for the metrics.
 */
import type { Config } from '../config/schema.js';
import { storeTotals, type Evictor } from '../jobs/evict.js';
import { schedulePrefetch, type PrefetchReport } from '../jobs/prefetch.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PushService } from '../mirror/push-service.js';
import type { AccessTimes } from '../storage/access-times.js';
import type { Store } from '../storage/store.js';

/** Runs eviction when the store is over its limit; `soon()` asks for a run shortly after a fill. */
export class EvictionRunner {
  #soon: NodeJS.Timeout | undefined;

  constructor(
    private readonly evictor: Evictor | undefined,
    private readonly accessTimes: AccessTimes,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  async run(): Promise<void> {
    if (!this.evictor) return;
    try {
      await this.accessTimes.flush();
      const r = await this.evictor.check();
      if (r) this.metrics.storeBytes.set(r.after);
    } catch (e) {
      this.logger.error({ err: e }, 'eviction failed');
    }
  }

  /**
   * A store that grew is checked against its limit a second after the last fill of a burst (a
   * pull's blobs arrive close together), so a check sees whole images; under steady load the
   * minute's check still runs.
   */
  soon(): void {
    if (!this.evictor) return;
    clearTimeout(this.#soon);
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.run();
    }, 1000);
    this.#soon.unref();
  }

  cancel(): void {
    clearTimeout(this.#soon);
  }
}

export interface ScheduleParts {
  config: Config;
  store: Store;
  push: PushService;
  accessTimes: AccessTimes;
  eviction: EvictionRunner;
  metrics: Metrics;
  prefetch: () => Promise<PrefetchReport>;
  logger: Logger;
  /** A read-only store: only the measuring runs (every other schedule would write to it). */
  readOnly?: boolean;
}

/** Starts every schedule; returns the stop functions (each waits for a run in progress). */
export function startSchedules(p: ScheduleParts): Array<() => Promise<void>> {
  const stops: Array<() => Promise<void>> = [];
  const { logger } = p;
  if (!p.readOnly) stops.push(...writingSchedules(p));
  // The store's size and blob count for the metrics, at start and every 10 minutes.
  const totals = async () => {
    const t = await storeTotals(p.store);
    p.metrics.storeBytes.set(t.bytes);
    p.metrics.storeBlobs.set(t.blobs);
  };
  void totals().catch((e: unknown) => logger.warn({ err: e }, 'could not measure the store'));
  stops.push(every(600_000, totals, logger));
  return stops;
}

/** The schedules that write to the store: prefetch, the upload sweep, access times and eviction. */
function writingSchedules(p: ScheduleParts): Array<() => Promise<void>> {
  const stops: Array<() => Promise<void>> = [];
  const { config, logger } = p;
  const schedule = config.prefetch.schedule;
  if (schedule !== undefined && config.prefetch.images.length > 0) stops.push(schedulePrefetch(p.prefetch, schedule, logger.child({ job: 'prefetch' })));
  stops.push(scheduleUploadSweep(p.push, Math.min(config.push.abandonAfter, 3_600_000), logger));
  // Access times reach the disk once a minute; the limit is checked as often (and after fills).
  stops.push(every(60_000, async () => {
    await p.accessTimes.flush();
    await p.eviction.run();
  }, logger));
  return stops;
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
