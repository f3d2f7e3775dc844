/**
 * The prefetch list as the console shows it: each configured entry with the last result of a run
 * (scheduled, from the console, or one image now), whether a run is going and when the schedule
 * runs next. Every run in this process goes through run() so its results are recorded.
 */
import type { PrefetchEntry, PrefetchStatus } from '../../http/console-service.js';
import type { PrefetchReport, PrefetchResult } from '../../jobs/prefetch.js';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../logging/logger.js';

type ConfiguredImage = Config['prefetch']['images'][number];

/** The label an entry's results carry: the reference, or `name:<tag>` for each tag a pattern selects. */
function entryLabel(e: ConfiguredImage): string {
  return typeof e === 'string' ? e : `${e.name}${e.tags ? ` (${e.tags.join(', ')})` : ' (every tag)'}${e.newest ? `, newest ${e.newest}` : ''}`;
}

function belongs(e: ConfiguredImage, result: PrefetchResult): boolean {
  return typeof e === 'string' ? result.image === e : result.image.startsWith(`${e.name}:`) || result.image.startsWith(`${e.name}@`);
}

export class PrefetchTracker {
  #running: Promise<PrefetchReport> | undefined;
  #finishedAt: number | undefined;
  readonly #startedAt = Date.now();
  /** Last result per image label, with when it ran. */
  readonly #results = new Map<string, { at: number; result: PrefetchResult }>();

  constructor(
    private readonly config: Config,
    private readonly prefetch: (images?: readonly string[], opts?: { pin?: boolean }) => Promise<PrefetchReport>,
    private readonly logger: Logger,
    /** False for a read-only store: serve runs no prefetch schedule then. */
    private readonly schedules = true,
  ) {}

  get running(): boolean {
    return this.#running !== undefined;
  }

  #record(report: PrefetchReport, at: number): void {
    for (const r of report.results) this.#results.set(r.image, { at, result: r });
  }

  /** The whole list (the schedule's run, and the console's "run all"), recorded; one at a time. */
  run(): Promise<PrefetchReport> {
    if (this.#running) return this.#running;
    const started = Date.now();
    this.#running = this.prefetch()
      .then((r) => {
        this.#record(r, started);
        return r;
      })
      .finally(() => {
        this.#running = undefined;
        this.#finishedAt = Date.now();
      });
    return this.#running;
  }

  /** "Run all" from the console: in the background; false when a run is going. */
  start(): boolean {
    if (this.#running) return false;
    this.run().catch((e: unknown) => this.logger.error({ err: e }, 'prefetch run from the console failed'));
    return true;
  }

  /** One image now (waits for it). */
  async one(image: string, opts: { pin?: boolean } = {}): Promise<PrefetchResult> {
    const started = Date.now();
    const report = await this.prefetch([image], opts);
    this.#record(report, started);
    const r = report.results[0];
    if (!r) throw Object.assign(new Error(`${image} selected no image to prefetch`), { statusCode: 400 });
    return r;
  }

  status(): PrefetchStatus {
    const every = this.config.prefetch.schedule;
    const scheduled = this.schedules && every !== undefined && this.config.prefetch.images.length > 0;
    const platforms = this.config.prefetch.platforms ? [...this.config.prefetch.platforms] : null;
    const entries: PrefetchEntry[] = this.config.prefetch.images.map((e) => {
      const mine = [...this.#results.entries()].filter(([image, x]) => belongs(e, x.result) || image === entryLabel(e));
      if (mine.length === 0) return { image: entryLabel(e), platforms, lastRun: null, outcome: null, error: null, digest: null };
      const failed = mine.find(([, x]) => x.result.outcome === 'failed');
      const lastRun = Math.max(...mine.map(([, x]) => x.at));
      return {
        image: entryLabel(e), platforms, lastRun,
        outcome: failed ? 'failed' : 'ok',
        error: failed?.[1].result.error ?? null,
        digest: mine.length === 1 ? (mine[0]![1].result.digest ?? null) : null,
      };
    });
    const nextRun = !scheduled || this.#running ? null : (this.#finishedAt ?? this.#startedAt) + (this.#finishedAt ? every : 0);
    return { every: scheduled ? Math.round(every / 1000) : null, nextRun, running: this.running, entries };
  }

  async settle(): Promise<void> {
    await this.#running?.catch(() => undefined);
  }
}
