/**
 * What the console reads of the running airlock, adapted: the store for the repository index,
 * the collectors and upstream clients for the traffic timelines, and each upstream's state.
 */
import type { UpstreamState } from '../../http/console-service.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { PullThrough } from '../../mirror/pull-through.js';
import { Digest } from '../../oci/digest.js';
import { blobDataPath } from '../../storage/paths.js';
import type { Store } from '../../storage/store.js';
import type { UpstreamClient } from '../../upstream/client.js';
import type { Described } from './index-client.js';
import type { IndexSource } from './repo-index.js';
import type { Counts } from './timelines.js';

/** The store as the index reads it (in the index's worker thread); how names route is `describe`'s. */
export function storeSource(store: Store, maxManifestSize: number, describe: (repo: string) => Promise<Described>): IndexSource {
  return {
    repositories: () => store.links.repositories(),
    revisions: async (repo) => (await store.links.revisions(repo)).map((d) => d.toString()),
    tags: async (repo) => {
      const out: Array<[string, string]> = [];
      for (const tag of await store.links.tagDirectories(repo)) {
        const d = await store.links.peekTag(repo, tag).catch(() => undefined);
        if (d) out.push([tag, d.toString()]);
      }
      return out;
    },
    // Straight from the file, not through the blob store's manifest cache: a walk of every
    // manifest would push the hot ones out of it.
    manifest: async (digest) => {
      const d = Digest.tryParse(digest);
      return d ? store.driver.readFile(blobDataPath(d), maxManifestSize) : undefined;
    },
    describe,
    pins: async () => (await store.pins.list()).map((p) => ({ name: p.name, digest: p.digest.toString() })),
  };
}

/** Whether a stored name is mirrored (and from which upstream) or local, as a pull would route it. */
export async function describeRepository(registry: PullThrough, repo: string): Promise<Described> {
  const r = await registry.resolve({ name: repo }).catch(() => undefined);
  const mirrored = r !== undefined && !r.local && r.storeName === repo && r.upstream !== undefined;
  return { kind: mirrored ? 'mirror' : 'local', upstream: mirrored ? r.upstream!.name : null };
}

/** Sums of a counter's values whose labels pass `pick`. */
async function sum(counter: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number | undefined> }> }> }, pick: (labels: Record<string, string | number | undefined>) => boolean): Promise<number> {
  let n = 0;
  for (const v of (await counter.get()).values) if (pick(v.labels)) n += v.value;
  return n;
}

/**
 * The counters the timelines sample: cache outcomes of blobs and manifests (hits are what the
 * store answered: hit, revalidated, stale), bytes of blob and manifest bodies sent to clients,
 * and bytes received from upstreams.
 */
export async function readCounts(metrics: Metrics, upstreams: ReadonlyMap<string, UpstreamClient>): Promise<Counts> {
  const [hits, misses, servedBytes] = await Promise.all([
    sum(metrics.cache, (l) => l.outcome !== 'miss'),
    sum(metrics.cache, (l) => l.outcome === 'miss'),
    sum(metrics.responseBytes, (l) => l.endpoint === 'blob' || l.endpoint === 'manifest'),
  ]);
  let fetchedBytes = 0;
  for (const u of upstreams.values()) fetchedBytes += u.stats.bytes;
  return { hits, misses, servedBytes, fetchedBytes };
}

/**
 * Each upstream's state and its last failure. Failures are seen through the client's exchange
 * hook, chained after the metrics' one (which a reload sets again: watch() re-chains it).
 */
export class UpstreamWatch {
  readonly #lastError = new Map<string, { message: string; at: number }>();
  readonly #hooked = new WeakMap<UpstreamClient, (status: number | 'error', seconds: number) => void>();

  constructor(private readonly upstreams: () => ReadonlyMap<string, UpstreamClient>) {}

  watch(): void {
    for (const u of this.upstreams().values()) {
      const current = u.onExchange;
      if (current !== undefined && this.#hooked.get(u) === current) continue;
      const hook = (status: number | 'error', seconds: number) => {
        current?.(status, seconds);
        if (status === 'error') this.#lastError.set(u.name, { message: 'connection failed or timed out', at: Date.now() });
        else if (status >= 500 || status === 429) this.#lastError.set(u.name, { message: `answered HTTP ${status}`, at: Date.now() });
      };
      u.onExchange = hook;
      this.#hooked.set(u, hook);
    }
  }

  states(): UpstreamState[] {
    this.watch();
    return [...this.upstreams().values()].map((u) => ({
      name: u.name,
      url: u.config.url,
      state: !u.available ? 'breaker-open' : u.stats.requests > 0 ? 'ok' : 'unknown',
      lastError: this.#lastError.get(u.name) ?? null,
      rateLimitRemaining: u.rateLimitNow()?.remaining ?? null,
      requests: u.stats.requests,
      errors: u.stats.errors,
    }));
  }
}
