/**
 * Blobs through the mirror (Distribution's proxyblobstore.go): local first, answered from the
 * store or with a redirect to it (storage.redirect); else one fill per digest and upstream that
 * every client joins (blob-fill.ts), read from another replica while one of the fleet fills it
 * (fleet-fill.ts). It also knows which digests are being filled or read now, which eviction
 * leaves alone.
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../logging/logger.js';
import type { Digest } from '../oci/digest.js';
import { BlobUnknownError, DigestMismatchError } from '../oci/errors.js';
import type { Store } from '../storage/store.js';
import { BlobTransfer } from '../upstream/blob-transfer.js';
import type { UpstreamClient } from '../upstream/client.js';
import { BlobFill, type FillSource } from './blob-fill.js';
import type { StoreSpace } from './fill-room.js';
import type { Fleet } from './fleet.js';
import type { MirrorEvents, UpstreamRoute } from './mirror-options.js';
import type { BlobResponse } from './image-source.js';
import { refusedError } from './router.js';

export interface BlobServiceOptions {
  /** Resumes of a broken blob transfer before the fill fails. */
  maxResumes: number;
  /** Answer stored blobs with a redirect to the object store (storage.redirect). */
  redirect?: boolean;
}

/** A fill in progress, as the console lists it. */
export interface LiveFill {
  repositories: string[];
  digest: string;
  size: number | undefined;
  received: number;
  startedAt: number;
  upstream: string;
}

export class BlobService {
  readonly #fills = new Map<string, BlobFill>();
  /** Fills that found no room (storage.maxSize) while their staged copy still serves clients. */
  readonly #unstored = new Set<BlobFill>();
  /** Streams of blobs open now, per digest (eviction leaves them alone: an object store has no unlink). */
  readonly #reading = new Map<string, number>();
  /** Room under storage.maxSize, made before a blob is stored (compose sets the evictor). */
  space?: StoreSpace;

  constructor(
    readonly store: Store,
    private opts: BlobServiceOptions,
    private readonly log: Logger,
    private readonly events: MirrorEvents,
    /** Replicas sharing the bucket (fleet.ts); absent for a single airlock. */
    private readonly fleet?: Fleet,
  ) {}

  /** A reloaded configuration: fills in progress finish on their old upstreams and settings. */
  reconfigure(opts: BlobServiceOptions): void {
    this.opts = opts;
  }

  /** Blob fills in progress. */
  get fillsInFlight(): number {
    return this.#fills.size;
  }

  /** Digests being filled now (eviction leaves them alone). */
  fillingDigests(): Set<string> {
    return new Set([...this.#fills.values()].map((f) => f.digest.toString()));
  }

  /** Fills running now, with their bytes so far (the console). */
  liveFills(): LiveFill[] {
    return [...this.#fills].map(([key, f]) => ({
      repositories: [...f.repositories], digest: f.digest.toString(), size: f.size, received: f.received, startedAt: f.startedAt, upstream: key.slice(0, key.indexOf(' ')),
    }));
  }

  /** Digests being filled or read now. */
  inUseDigests(): Set<string> {
    const s = this.fillingDigests();
    for (const d of this.#reading.keys()) s.add(d);
    return s;
  }

  /** The first running fill of `digest` (from whichever upstream), for another replica to follow. */
  runningFill(digest: Digest): BlobFill | undefined {
    return [...this.#fills.values()].find((f) => f.digest.equals(digest) && f.state === 'running');
  }

  /** Counts `stream` as a reader of `digest` until it closes. */
  reading<T extends Readable>(digest: Digest, stream: T): T {
    const key = digest.toString();
    this.#reading.set(key, (this.#reading.get(key) ?? 0) + 1);
    stream.once('close', () => {
      const n = (this.#reading.get(key) ?? 1) - 1;
      if (n > 0) this.#reading.set(key, n);
      else this.#reading.delete(key);
    });
    return stream;
  }

  /** Stops every fill (their temp objects are removed) and waits until they have settled. */
  async abortFills(): Promise<void> {
    const fills = [...this.#fills.values()];
    for (const f of fills) f.abort('airlock is shutting down');
    await Promise.allSettled(fills.map((f) => f.done));
    // Fills not stored (storage.maxSize) keep a staged copy for their clients a moment longer.
    await Promise.allSettled([...this.#unstored].map((f) => f.discard()));
  }

  /**
   * A blob held for the target's repository (its size), or the upstream to fill it from. Bytes
   * held for another repository count once the upstream confirms, with a HEAD and no transfer,
   * that this repository has the blob too.
   */
  async #find(route: UpstreamRoute, digest: Digest): Promise<{ size: number } | { route: UpstreamRoute; upstream: UpstreamClient }> {
    const [served, linked] = await Promise.all([this.store.blobs.servedSize(digest), this.store.links.isBlobLinked(route.storeName, digest)]);
    const upstream = route.upstream;
    if (served && linked) return { size: served.size };
    // Linking below writes: it looks at the store itself, not at what memory recalls.
    const info = served && upstream ? await this.store.blobs.stat(digest) : served;
    if (!upstream) {
      if (route.refusal && !info) throw refusedError(route.refusal);
      throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
    }
    if (info) {
      const size = await upstream.headBlob(route.upstreamRepository, digest.toString());
      if (size === undefined) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
      await this.store.links.linkBlob(route.storeName, digest);
      return { size: info.size };
    }
    return { route, upstream };
  }

  /** A blob linked to the repository, from the store or its fill; `head` asks for size only. */
  async get(route: UpstreamRoute, digest: Digest, opts?: { head?: boolean }): Promise<BlobResponse> {
    const found = await this.#find(route, digest);
    // A mirrored blob removed between here and the read (eviction, gc) is fetched again, not lost.
    if ('size' in found) return this.#local(digest, found.size, route.upstream ? () => this.#join(route, route.upstream!, digest) : undefined);
    const { upstream } = found;
    if (opts?.head) {
      const size = await upstream.headBlob(route.upstreamRepository, digest.toString());
      if (size === undefined) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
      return { digest, size, cache: 'miss', rangeable: false, open: () => Promise.reject(new Error('HEAD has no body')) };
    }
    const fill = await this.#join(route, upstream, digest);
    await fill.ready;
    if (fill.size === undefined) {
      // No Content-Length from the upstream: wait for the whole blob, then serve it.
      await fill.done;
      if (fill.stored !== false) {
        const stored = await this.store.blobs.stat(digest);
        if (!stored) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
        return this.#local(digest, stored.size);
      }
      // Not stored (no room under storage.maxSize): the fill's staged copy serves it all the same.
    }
    const size = fill.size ?? 0;
    this.events.onBlob?.('miss');
    return { digest, size, cache: 'miss', rangeable: false, open: async (range) => this.reading(digest, fill.follow(range?.start, range?.end)) };
  }

  /**
   * Makes sure a blob of the target is in the store, without serving it (prefetch): present
   * blobs cost nothing (or a HEAD when held for another repository); a missing one joins or
   * starts the fill and waits for its commit. `onBytes` reports progress.
   */
  async fetch(route: UpstreamRoute, digest: Digest, onBytes?: (n: number) => void): Promise<{ fetched: boolean; size: number }> {
    const found = await this.#find(route, digest);
    if ('size' in found) return { fetched: false, size: found.size };
    const fill = await this.#join(route, found.upstream, digest);
    let seen = 0;
    const progress = () => {
      const now = fill.readable;
      if (now > seen) {
        onBytes?.(now - seen);
        seen = now;
      }
    };
    fill.on('progress', progress);
    try {
      await fill.done;
    } finally {
      fill.off('progress', progress);
    }
    if (fill.stored === false) throw new Error(`no room in the store for ${digest.toString()} (${fill.size ?? 0} bytes) under storage.maxSize: the rest is pinned, local or in use`);
    const stored = await this.store.blobs.stat(digest);
    if (!stored) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
    if (stored.size > seen) onBytes?.(stored.size - seen);
    return { fetched: true, size: stored.size };
  }

  #local(digest: Digest, size: number, refill?: () => Promise<BlobFill>): BlobResponse {
    this.events.onBlob?.('hit');
    const redirect = this.opts.redirect ? () => this.store.blobs.url(digest, 20 * 60) : undefined;
    return {
      redirect,
      digest,
      size,
      cache: 'hit',
      rangeable: true,
      open: async (range) => {
        const s = await this.store.blobs.open(digest, range);
        if (s) return this.reading(digest, s);
        // Removed between stat and open (gc, eviction): a mirrored blob is filled again, as a miss
        // would be (the same bytes, so the size already sent holds); else a clean 404.
        if (!refill) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
        const fill = await refill();
        await fill.ready;
        return this.reading(digest, fill.follow(range?.start, range?.end));
      },
    };
  }

  /** The running fill of the blob from this upstream, joined (its repository confirmed), else a new one. */
  async #join(route: UpstreamRoute, upstream: UpstreamClient, digest: Digest): Promise<BlobFill> {
    const key = `${upstream.name} ${digest.toString()}`;
    const existing = this.#fills.get(key);
    if (existing && existing.state === 'running') {
      if (!existing.repositories.has(route.storeName)) {
        const size = await upstream.headBlob(route.upstreamRepository, digest.toString());
        if (size === undefined) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
        existing.repositories.add(route.storeName);
      }
      return existing;
    }
    const transfer = new BlobTransfer(upstream, route.upstreamRepository, digest.toString());
    const fromUpstream: FillSource = {
      open: async (offset, ctl) => {
        ctl.claim();
        return transfer.open(offset);
      },
    };
    const fleetSource = this.fleet?.source(digest, fromUpstream);
    const fill = new BlobFill(
      digest,
      this.store,
      fleetSource ?? fromUpstream,
      {
        maxResumes: this.opts.maxResumes,
        log: this.log,
        space: this.space,
        onSettled: (outcome, bytes, error) => {
          transfer.received(bytes - (fleetSource?.otherBytes ?? 0));
          if (error instanceof DigestMismatchError) this.events.onDigestMismatch?.();
          this.events.onFill?.(outcome, bytes, error);
        },
      },
    );
    fill.repositories.add(route.storeName);
    this.#fills.set(key, fill);
    fill.done.then(
      () => {
        this.#fills.delete(key);
        if (fill.stored !== false) return;
        this.#unstored.add(fill);
        fill.once('released', () => this.#unstored.delete(fill));
      },
      () => this.#fills.delete(key),
    );
    return fill;
  }
}
