/**
 * Manifests through the mirror (Distribution's proxymanifeststore.go and proxytagservice.go):
 * - by digest: local first, else fetched once, verified, stored; never revalidated;
 * - by tag: trusted for cache.tagTTL, then revalidated with a HEAD (Docker Hub does not count
 *   HEADs), fetched only when the digest changed; served stale when the upstream is unreachable,
 *   slow, failing or rate limiting, so a disconnected site keeps working, and without
 *   revalidation while the upstream's rate limit is under its reserve. In a fleet, one replica
 *   asks the upstream per tag per TTL; a tag found on another manifest is reported (audit).
 * With no upstream for a name, the store is served as a plain registry and nothing goes out.
 */
import { LRUCache } from 'lru-cache';
import type { Logger } from '../logging/logger.js';
import { Digest, digestBytes } from '../oci/digest.js';
import { DigestMismatchError, ManifestInvalidError, ManifestUnknownError, UpstreamBadResponseError } from '../oci/errors.js';
import { parseManifest } from '../oci/manifest.js';
import type { ManifestReference } from '../oci/reference.js';
import { SharedCalls } from '../runtime/shared-calls.js';
import type { StoredManifest } from '../storage/blob-store.js';
import type { Store } from '../storage/store.js';
import type { UpstreamClient } from '../upstream/client.js';
import type { StoreSpace } from './fill-room.js';
import type { Fleet } from './fleet.js';
import type { MirrorEvents, UpstreamRoute } from './mirror-options.js';
import { negotiateManifest } from './negotiate.js';
import type { ManifestResponse } from './image-source.js';
import { refusedError } from './router.js';
import { isUpstreamFailure } from './upstream-failure.js';

export interface ManifestServiceOptions {
  /** How long a tag is trusted before a HEAD revalidates it. */
  tagTTL: number;
  maxManifestSize: number;
}

export class ManifestService {
  readonly #flights = new SharedCalls<ManifestResponse>();
  /** store name + tag → when the tag was last confirmed with the upstream. */
  readonly #tagChecked = new LRUCache<string, number>({ max: 20_000 });
  /** Room under storage.maxSize, made before a manifest is stored (compose sets the evictor). */
  space?: StoreSpace;

  constructor(
    private readonly store: Store,
    private opts: ManifestServiceOptions,
    private readonly log: Logger,
    private readonly events: MirrorEvents,
    /** Replicas sharing the bucket (fleet.ts); absent for a single airlock. */
    private readonly fleet?: Fleet,
  ) {}

  /** A reloaded configuration: new TTLs, and every tag is revalidated afresh. */
  reconfigure(opts: ManifestServiceOptions): void {
    this.opts = opts;
    this.#tagChecked.clear();
  }

  /** Resolves a manifest for a client whose Accept headers named `accept`. */
  async get(route: UpstreamRoute, ref: ManifestReference, accept: readonly string[], opts?: { pull?: boolean }): Promise<ManifestResponse> {
    const m = await this.#manifest(route, ref);
    const chosen = await negotiateManifest(m, ref, accept, (d) => this.#manifest(route, { kind: 'digest', digest: d }).catch(() => undefined));
    const outcome = chosen.cache ?? 'hit';
    this.events.onManifest?.(outcome);
    this.events.onManifestServed?.(route.storeName, chosen.digest, opts?.pull !== false, outcome === 'miss');
    return chosen;
  }

  #single<T extends ManifestResponse>(key: string, fn: () => Promise<T>): Promise<ManifestResponse> {
    return this.#flights.run(key, fn);
  }

  async #manifest(route: UpstreamRoute, ref: ManifestReference): Promise<ManifestResponse> {
    const local = await this.store.links.getManifest(route.storeName, ref);
    const upstream = route.upstream;
    if (ref.kind === 'digest') {
      if (local) return { ...local, cache: 'hit' };
      if (!upstream) throw route.refusal ? refusedError(route.refusal) : manifestUnknown(route.storeName, ref);
      return this.#single(`${route.storeName}@${ref.digest.toString()}`, async () => ({
        ...(await this.#fetch(route, upstream, ref.digest.toString(), ref.digest)),
        cache: 'miss',
      }));
    }
    if (!upstream) {
      if (local) return { ...local, cache: 'hit' };
      throw route.refusal ? refusedError(route.refusal) : manifestUnknown(route.storeName, ref);
    }
    const key = `${route.storeName}:${ref.tag}`;
    const checked = this.#tagChecked.get(key);
    if (local && checked !== undefined && Date.now() - checked < this.opts.tagTTL) return { ...local, cache: 'hit' };
    // Near the end of the upstream's rate limit, what is left is kept for clients' cold pulls: a
    // stored tag is served as it is, unrevalidated, until the window resets (client.ts warns once).
    if (local && upstream.rateLimitReserveHeld()) return { ...local, cache: 'stale' };
    return this.#single(`tag ${key}`, async () => {
      let claim: Awaited<ReturnType<Fleet['claimTagCheck']>> | undefined;
      try {
        if (local && this.fleet) {
          // Once per tag per TTL for the whole fleet: another replica may have just asked.
          claim = await this.fleet.claimTagCheck(`${upstream.name} ${key}`, this.opts.tagTTL);
          if (!claim.mine) {
            this.store.links.forgetTag(route.storeName, ref.tag);
            const now = await this.store.links.getManifest(route.storeName, ref);
            if (now) {
              this.#tagChecked.set(key, Date.now());
              return { ...now, cache: 'revalidated' };
            }
          }
        }
        if (local) {
          const head = await upstream.headManifest(route.upstreamRepository, ref.tag);
          if (!head) throw manifestUnknown(route.storeName, ref);
          if (head.digest === local.digest.toString()) {
            this.#tagChecked.set(key, Date.now());
            return { ...local, cache: 'revalidated' };
          }
        }
        const fetched = await this.#fetch(route, upstream, ref.tag, undefined, ref.tag);
        this.#tagChecked.set(key, Date.now());
        if (local && !local.digest.equals(fetched.digest)) {
          await this.events.onTagMoved?.({ storeName: route.storeName, tag: ref.tag, upstream: upstream.name, from: local.digest, to: fetched.digest });
        }
        if (!local && this.fleet) await this.fleet.markTagChecked(`${upstream.name} ${key}`, this.opts.tagTTL);
        return { ...fetched, cache: 'miss' };
      } catch (e) {
        if (local && isUpstreamFailure(e)) {
          this.log.warn({ repository: route.storeName, tag: ref.tag, upstream: upstream.name, err: (e as Error).message }, 'upstream unavailable; serving the cached tag');
          return { ...local, cache: 'stale' };
        }
        throw e;
      } finally {
        if (claim?.mine) await claim.done();
      }
    });
  }

  /** GETs a manifest, verifies its digest, stores the exact bytes (and the tag). */
  async #fetch(route: UpstreamRoute, upstream: UpstreamClient, reference: string, expected?: Digest, tag?: string): Promise<StoredManifest> {
    const res = await upstream.getManifest(route.upstreamRepository, reference, this.opts.maxManifestSize);
    if (!res) throw manifestUnknown(route.storeName, expected ? { kind: 'digest', digest: expected } : { kind: 'tag', tag: reference });
    const algorithm = expected?.algorithm ?? 'sha256';
    const actual = digestBytes(res.bytes, algorithm);
    const claimed = expected ?? (res.digest ? Digest.tryParse(res.digest) : undefined);
    if (claimed && claimed.algorithm === algorithm && !claimed.equals(actual)) {
      this.events.onDigestMismatch?.();
      this.log.error({ repository: route.storeName, reference, expected: claimed.toString(), actual: actual.toString() }, 'upstream manifest does not match its digest; discarded');
      throw new DigestMismatchError(claimed.toString(), actual.toString());
    }
    try {
      parseManifest(res.bytes, res.mediaType);
    } catch (e) {
      if (e instanceof ManifestInvalidError) throw new UpstreamBadResponseError(`upstream ${upstream.name} sent an invalid manifest: ${e.message}`, { cause: e });
      throw e;
    }
    return this.#put(route.storeName, reference, res.bytes, actual, tag);
  }

  /** Stores a verified manifest; under storage.maxSize, room first, and with none it is served but not stored. */
  async #put(storeName: string, reference: string, bytes: Buffer, actual: Digest, tag: string | undefined): Promise<StoredManifest> {
    const algorithm = actual.algorithm;
    if (!this.space || (await this.store.blobs.stat(actual))) return this.store.links.putManifest(storeName, bytes, tag, algorithm);
    const room = await this.space.reserve(bytes.length, actual.toString());
    if (!room) {
      this.log.warn({ repository: storeName, reference, digest: actual.toString(), sizeBytes: bytes.length }, 'manifest served but not stored: no room under storage.maxSize (the rest is pinned, local or in use)');
      return { digest: actual, bytes, mediaType: parseManifest(bytes).mediaType };
    }
    let stored: StoredManifest;
    try {
      stored = await this.store.links.putManifest(storeName, bytes, tag, algorithm);
    } catch (e) {
      room.settle(false);
      throw e;
    }
    room.settle(true);
    return stored;
  }
}

function manifestUnknown(repo: string, ref: ManifestReference): ManifestUnknownError {
  const detail = ref.kind === 'tag' ? { name: repo, tag: ref.tag } : { name: repo, digest: ref.digest.toString() };
  return new ManifestUnknownError(undefined, { detail });
}
