/**
 * Names marked local (.airlock/local/<name>/_local): they hold pushed or imported content, so no
 * request, in any spelling, may route them to an upstream (whose copy would replace it) or evict
 * them.
 */
import { LRUCache } from 'lru-cache';
import { SharedCalls } from '../runtime/shared-calls.js';
import type { StorageDriver } from './driver.js';
import * as p from './paths.js';

/** A marker holds its name and a date; anything larger was not written by mark(). */
const MARKER_MAX = 64 * 1024;

export class LocalMarks {
  /** A yes is kept for good (marks are never removed); a no for a few seconds (another process may mark it). */
  readonly #known = new LRUCache<string, boolean>({ max: 10_000, ttl: 3000, ttlAutopurge: false });
  /** A pull's first requests arrive together; they share one look at the marker. */
  readonly #looks = new SharedCalls<boolean>();

  constructor(private readonly driver: StorageDriver) {}

  async mark(repo: string): Promise<void> {
    if (this.#known.get(repo) === true) return;
    const path = p.localMarkerPath(repo);
    if (!(await this.driver.stat(path))) await this.driver.writeFile(path, JSON.stringify({ name: repo, since: new Date().toISOString() }));
    this.#known.set(repo, true, { ttl: 0 });
    this.#looks.forget(repo);
  }

  /** Whether `repo` was marked local. */
  async has(repo: string): Promise<boolean> {
    const known = this.#known.get(repo);
    if (known !== undefined) return known;
    return this.#looks.run(repo, async () => {
      // The marker is a file: reading it is one request on an object store, where a stat of a
      // missing name also lists it as a directory.
      const path = p.localMarkerPath(repo);
      // A marker too large to read (not written by mark()) still marks the name.
      const read = await this.driver.readFile(path, MARKER_MAX).catch(async (e: unknown) => {
        if ((await this.driver.stat(path)) === undefined) throw e;
        return Buffer.alloc(0);
      });
      const yes = read !== undefined;
      // mark() may have finished while this read ran: its yes stands.
      if (this.#known.get(repo) === true) return true;
      this.#known.set(repo, yes, yes ? { ttl: 0 } : undefined);
      return yes;
    });
  }
}
