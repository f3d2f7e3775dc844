/**
 * The pull-through policy on top of the store (DESIGN.md "mirror/"), composed of services by
 * role as Distribution's registry/proxy/ is:
 * - manifest-service.ts: by digest, local first, else fetched once, verified, stored; by tag,
 *   trusted for cache.tagTTL, then revalidated with a HEAD, served stale when the upstream fails;
 * - blob-service.ts: local first (or a redirect to the store), else one fill per digest that
 *   every client follows (blob-fill.ts);
 * - tag-list.ts and catalog.ts, the listings; referrers.ts, the referrers API;
 * - fleet-fill.ts: what other replicas of the fleet read of this one's fills.
 * Each request is resolved (router.ts) and admitted (the allow and deny lists) here, before any
 * service decides on the resolved name. With no upstream for a name, the store is served as a
 * plain registry and nothing goes out.
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../logging/logger.js';
import type { Digest } from '../oci/digest.js';
import { DeniedError } from '../oci/errors.js';
import type { PageRequest } from '../oci/pagination.js';
import { parseRepositoryName, type ManifestReference } from '../oci/reference.js';
import type { Store } from '../storage/store.js';
import type { UpstreamClient } from '../upstream/client.js';
import { BlobService, type LiveFill } from './blob-service.js';
import { catalogPage } from './catalog.js';
import type { StoreSpace } from './fill-room.js';
import type { Fleet } from './fleet.js';
import { servePeerFill } from './fleet-fill.js';
import { ManifestService } from './manifest-service.js';
import type { MirrorEvents, PullThroughOptions, UpstreamRoute } from './mirror-options.js';
import type { Denial } from './policy.js';
import { referrersIndex } from './referrers.js';
import type { BlobResponse, ManifestResponse, Page, ImageSource, ResolvedName, Target } from './image-source.js';
import type { Router } from './router.js';
import { tagListPage } from './tag-list.js';

export type { MirrorEvents, PullThroughOptions, UpstreamRoute } from './mirror-options.js';

export class PullThrough implements ImageSource {
  readonly #manifests: ManifestService;
  readonly #blobs: BlobService;
  /**
   * A read-only store (storage.readOnly, or a read-only root): requests are admitted on their
   * real route (the allow and deny lists still hold) and then answered from the store alone, as a
   * plain registry would; no upstream is asked, so nothing new ever needs storing.
   */
  storeOnly = false;

  constructor(
    readonly store: Store,
    public router: Router<UpstreamClient>,
    private opts: PullThroughOptions,
    private readonly log: Logger,
    private readonly events: MirrorEvents = {},
    /** Replicas sharing the bucket (fleet.ts); absent for a single airlock. */
    readonly fleet?: Fleet,
  ) {
    this.#manifests = new ManifestService(store, opts, log, events, fleet);
    this.#blobs = new BlobService(store, opts, log, events, fleet);
  }

  /** Room under storage.maxSize, made before a blob or manifest is stored (compose sets the evictor). */
  get space(): StoreSpace | undefined {
    return this.#blobs.space;
  }

  set space(space: StoreSpace | undefined) {
    this.#manifests.space = space;
    this.#blobs.space = space;
  }

  /** A reloaded configuration: new routes and upstreams (fills in progress finish on the old ones), new TTLs. */
  reconfigure(router: Router<UpstreamClient>, opts: PullThroughOptions): void {
    this.router = router;
    this.opts = opts;
    this.#manifests.reconfigure(opts);
    this.#blobs.reconfigure(opts);
  }

  /** Blob fills in progress. */
  get fillsInFlight(): number {
    return this.#blobs.fillsInFlight;
  }

  /** Digests being filled now (eviction leaves them alone). */
  fillingDigests(): Set<string> {
    return this.#blobs.fillingDigests();
  }

  /** Fills running now, with their bytes so far (the console). */
  liveFills(): LiveFill[] {
    return this.#blobs.liveFills();
  }

  /** Digests being filled or read now. */
  inUseDigests(): Set<string> {
    return this.#blobs.inUseDigests();
  }

  /** Stops every fill (their temp objects are removed) and waits until they have settled. */
  abortFills(): Promise<void> {
    return this.#blobs.abortFills();
  }

  /**
   * The stored repository a request names (router.ts), completed with what the store knows: a
   * name marked local (pushed or imported content) never gets an upstream, and a name that is
   * local as written (`alpine` pushed to a plain registry) is served as written, not as
   * library/alpine. Resolved once per request; every decision is made on the result.
   */
  async resolve(target: Target, opts: { create?: boolean } = {}): Promise<UpstreamRoute> {
    const route = this.router.route(target);
    if (target.ns === undefined || target.ns === '') {
      const written = parseRepositoryName(target.name);
      if (written !== route.storeName) {
        const local = this.router.isLocal(written) || !this.router.hasUpstreams || (await this.store.local.has(written));
        if ((local && opts.create) || (await this.store.links.repositoryExists(written))) return { storeName: written, local, upstreamRepository: written };
      }
    }
    if (!route.local && (await this.store.local.has(route.storeName))) return { storeName: route.storeName, local: true, upstreamRepository: route.upstreamRepository };
    return route;
  }

  /** The route the services answer on: without its upstream when the store is read-only. */
  #served(route: UpstreamRoute): UpstreamRoute {
    if (!this.storeOnly || !route.upstream) return route;
    return { storeName: route.storeName, local: route.local, upstreamRepository: route.upstreamRepository };
  }

  /**
   * What the allow and deny lists say of a mirrored name (and tag): the denial while they are
   * enforced, else undefined. Local names (no upstream) are not subject to them.
   */
  denial(route: UpstreamRoute, tag?: string): Denial | undefined {
    const policy = this.opts.policy;
    if (!route.upstream || !policy || policy.mode !== 'enforce') return undefined;
    return policy.check(route.upstream.name, route.upstreamRepository, tag);
  }

  /**
   * The lists' gate, before the store or the upstream is asked: a denied mirrored name is denied
   * whether or not its content is cached. In report mode the request goes on, logged and counted.
   */
  admit(route: UpstreamRoute, tag?: string): void {
    const policy = this.opts.policy;
    if (!route.upstream || !policy) return;
    const d = policy.check(route.upstream.name, route.upstreamRepository, tag);
    if (!d) return;
    this.events.onPolicyDenial?.(d.upstream, policy.mode);
    const fields = { repository: route.storeName, upstream: d.upstream, upstreamRepository: d.repository, tag, rule: d.rule ?? `upstreams.${d.upstream}.allow` };
    if (policy.mode === 'report') {
      this.log.warn(fields, `policy (report mode) would deny: ${d.message}`);
      return;
    }
    this.log.info(fields, 'denied by policy');
    throw new DeniedError(d.message, { detail: { name: route.storeName, ...(tag === undefined ? {} : { tag }), rule: fields.rule } });
  }

  async getManifest(route: UpstreamRoute, ref: ManifestReference, accept: readonly string[], opts?: { pull?: boolean }): Promise<ManifestResponse> {
    this.admit(route, ref.kind === 'tag' ? ref.tag : undefined);
    return this.#manifests.get(this.#served(route), ref, accept, opts);
  }

  async getBlob(route: UpstreamRoute, digest: Digest, opts?: { head?: boolean }): Promise<BlobResponse> {
    this.admit(route);
    return this.#blobs.get(this.#served(route), digest, opts);
  }

  /**
   * Makes sure a blob of the target is in the store, without serving it (prefetch): present
   * blobs cost nothing (or a HEAD when held for another repository); a missing one joins or
   * starts the fill and waits for its commit. `onBytes` reports progress.
   */
  async fetchBlob(route: UpstreamRoute, digest: Digest, onBytes?: (n: number) => void): Promise<{ fetched: boolean; size: number }> {
    this.admit(route);
    return this.#blobs.fetch(this.#served(route), digest, onBytes);
  }

  /**
   * A blob for another replica of the fleet (its fleet port): this replica's fill of it as it
   * grows, from `offset`, or the stored blob; undefined when it has neither.
   */
  peerFill(digest: Digest, offset: number): Promise<{ size: number; body: Readable } | undefined> {
    return servePeerFill(this.#blobs, digest, offset);
  }

  async listTags(route: UpstreamRoute, page: PageRequest): Promise<Page> {
    this.admit(route);
    return tagListPage(this.store, this.log, this.#served(route), page);
  }

  catalog(page: PageRequest, visible?: (storeName: string) => boolean): Promise<Page> {
    return catalogPage(this.store, page, this.opts.defaultPageSize, visible);
  }

  /** The referrers API (referrers.ts): an OCI index of the repository's manifests whose subject is `digest`. */
  referrers(repository: ResolvedName, digest: Digest, artifactType?: string): Promise<Buffer> {
    return referrersIndex(this.store, repository.storeName, digest, artifactType);
  }
}
