/**
 * Names marked local (.airlock/local/<name>/_local): they hold pushed or imported content, so no
 * request, in any spelling, may route them to an upstream (whose copy would replace it) or evict
 * them.
 */
import { LRUCache } from 'lru-cache';
import type { StorageDriver } from './driver.js';
import * as p from './paths.js';

export class LocalMarks {
  /** A yes is kept for good (marks are never removed); a no for a few seconds (another process may mark it). */
  readonly #known = new LRUCache<string, boolean>({ max: 10_000, ttl: 3000, ttlAutopurge: false });

  constructor(private readonly driver: StorageDriver) {}

  async mark(repo: string): Promise<void> {
    if (this.#known.get(repo) === true) return;
    const path = p.localMarkerPath(repo);
    if (!(await this.driver.stat(path))) await this.driver.writeFile(path, JSON.stringify({ name: repo, since: new Date().toISOString() }));
    this.#known.set(repo, true, { ttl: 0 });
  }

  /** Whether `repo` was marked local. */
  async has(repo: string): Promise<boolean> {
    const known = this.#known.get(repo);
    if (known !== undefined) return known;
    const yes = (await this.driver.stat(p.localMarkerPath(repo))) !== undefined;
    this.#known.set(repo, yes, yes ? { ttl: 0 } : undefined);
    return yes;
  }
}
