/**
 * When each image (repository@manifest digest) was last served and how often it was pulled, for
 * eviction, `airlock du` and the console. Recorded in memory on the hot path (a field write, no
 * I/O) and written out at most once a minute (and at shutdown) as one JSON file under .airlock/,
 * atomically, so the times survive a restart without a write per request. Pull counts are kept
 * in memory only: they count since the process started.
 */
import type { StorageDriver } from './driver.js';
import { AIRLOCK } from './paths.js';

const FILE = `${AIRLOCK}/access.json`;
const MAX_BYTES = 256 * 2 ** 20;

/** One image's record: last served (epoch ms) and pulls counted since start. */
export interface Access {
  at: number;
  pulls: number;
}

export class AccessTimes {
  /**
   * Repository → manifest digest → record. Two levels, not one `repo@digest` key: a served
   * digest's string is cached with its manifest, so its hash is too, and a pull builds no key.
   */
  readonly #repos = new Map<string, Map<string, Access>>();
  #dirty = false;
  /** Called when an image is served that this process had no record of (the console reads it then). */
  onNew: ((repo: string) => void) | undefined;

  /** `persist: false` (a read-only store): recorded for the console, never written out. */
  constructor(private readonly driver: StorageDriver, private readonly opts: { persist?: boolean } = {}) {}

  static key(repo: string, digest: string): string {
    return `${repo}@${digest}`;
  }

  /** Reads the file written last time (a damaged one is ignored: times fall back to file dates). */
  async load(): Promise<void> {
    const buf = await this.driver.readFile(FILE, MAX_BYTES).catch(() => undefined);
    if (!buf) return;
    try {
      const j = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
      for (const [k, v] of Object.entries(j)) {
        const at = k.lastIndexOf('@');
        if (typeof v !== 'number' || at <= 0) continue;
        const m = this.#of(k.slice(0, at));
        const digest = k.slice(at + 1);
        if (!m.has(digest)) m.set(digest, { at: v, pulls: 0 });
      }
    } catch {
      // Damaged: start afresh.
    }
  }

  #of(repo: string): Map<string, Access> {
    let m = this.#repos.get(repo);
    if (!m) this.#repos.set(repo, (m = new Map()));
    return m;
  }

  /** The image was served; `pull`: a pull (a GET by a client), counted. */
  touch(repo: string, digest: string, at = Date.now(), pull = false): void {
    const m = this.#of(repo);
    const r = m.get(digest);
    if (r) {
      r.at = at;
      if (pull) r.pulls++;
    } else {
      m.set(digest, { at, pulls: pull ? 1 : 0 });
      this.onNew?.(repo);
    }
    this.#dirty = true;
  }

  get(repo: string, digest: string): number | undefined {
    return this.#repos.get(repo)?.get(digest)?.at;
  }

  /** Every recorded image of `repo`, by manifest digest (read-only: a view, not a copy). */
  of(repo: string): ReadonlyMap<string, Readonly<Access>> | undefined {
    return this.#repos.get(repo);
  }

  forget(repo: string, digest: string): void {
    const m = this.#repos.get(repo);
    if (!m?.delete(digest)) return;
    if (m.size === 0) this.#repos.delete(repo);
    this.#dirty = true;
  }

  async flush(): Promise<void> {
    if (!this.#dirty || this.opts.persist === false) return;
    this.#dirty = false;
    const out: Record<string, number> = {};
    for (const [repo, m] of this.#repos) for (const [digest, r] of m) out[AccessTimes.key(repo, digest)] = r.at;
    try {
      await this.driver.writeFile(FILE, JSON.stringify(out));
    } catch (e) {
      this.#dirty = true;
      throw e;
    }
  }
}
