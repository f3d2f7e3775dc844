/**
 * When each image (repository@manifest digest) was last served, for eviction and `airlock du`.
 * Recorded in memory on the hot path (a map write, no I/O) and written out at most once a
 * minute (and at shutdown) as one JSON file under .airlock/, atomically, so it survives a
 * restart without a write per request.
 */
import type { StorageDriver } from './driver.js';
import { AIRLOCK } from './paths.js';

const FILE = `${AIRLOCK}/access.json`;
const MAX_BYTES = 256 * 2 ** 20;

export class AccessTimes {
  readonly #times = new Map<string, number>();
  #dirty = false;

  constructor(private readonly driver: StorageDriver) {}

  static key(repo: string, digest: string): string {
    return `${repo}@${digest}`;
  }

  /** Reads the file written last time (a damaged one is ignored: times fall back to file dates). */
  async load(): Promise<void> {
    const buf = await this.driver.readFile(FILE, MAX_BYTES).catch(() => undefined);
    if (!buf) return;
    try {
      const j = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
      for (const [k, v] of Object.entries(j)) if (typeof v === 'number' && !this.#times.has(k)) this.#times.set(k, v);
    } catch {
      // Damaged: start afresh.
    }
  }

  touch(repo: string, digest: string, at = Date.now()): void {
    this.#times.set(AccessTimes.key(repo, digest), at);
    this.#dirty = true;
  }

  get(repo: string, digest: string): number | undefined {
    return this.#times.get(AccessTimes.key(repo, digest));
  }

  forget(repo: string, digest: string): void {
    if (this.#times.delete(AccessTimes.key(repo, digest))) this.#dirty = true;
  }

  async flush(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    try {
      await this.driver.writeFile(FILE, JSON.stringify(Object.fromEntries(this.#times)));
    } catch (e) {
      this.#dirty = true;
      throw e;
    }
  }
}
