/**
 * The pull-through policy on top of the store (DESIGN.md "mirror/"):
 * - manifests by digest: local first, else fetched once, verified, stored; never revalidated;
 * - manifests by tag: trusted for cache.tagTTL, then revalidated with a HEAD (Docker Hub does
 *   not count HEADs), fetched only when the digest changed; served stale when the upstream is
 *   unreachable, slow, failing or rate limiting, so a disconnected site keeps working, and
 *   without revalidation while the upstream's rate limit is under its reserve;
 * - blobs: local first, else one fill per digest that every client follows (blob-fill.ts).
 * With no upstream for a name, the store is served as a plain registry and nothing goes out.
 */
import { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../logging/logger.js';
import { Digest, digestBytes } from '../oci/digest.js';
import { BlobUnknownError, DeniedError, DigestMismatchError, ManifestInvalidError, ManifestUnknownError, MirrorError, NameUnknownError, UpstreamBadResponseError } from '../oci/errors.js';
import { parseManifest } from '../oci/manifest.js';
import { paginate, type PageRequest } from '../oci/pagination.js';
import { parseRepositoryName, type ManifestReference } from '../oci/reference.js';
import type { RegistryStore, StoredManifest } from '../storage/registry-store.js';
import type { UpstreamClient } from '../upstream/client.js';
import { BlobFill, type FillSource, type StoreSpace } from './blob-fill.js';
import type { Fleet } from './fleet.js';
import { catalogPage } from './catalog.js';
import { negotiateManifest } from './negotiate.js';
import type { Denial, UpstreamPolicy } from './policy.js';
import type { BlobResponse, ManifestResponse, Page, Registry, Target } from './registry.js';
import { refusedError, type Route, type Router } from './router.js';

export interface MirrorRegistryOptions {
  /** How long a tag is trusted before a HEAD revalidates it. */
  tagTTL: number;
  maxManifestSize: number;
  defaultPageSize: number;
  /** Resumes of a broken blob transfer before the fill fails. */
  maxResumes: number;
  /** Answer stored blobs with a redirect to the object store (storage.redirect). */
  redirect?: boolean;
  /** Allow and deny lists per upstream (policy.ts); mirrored names only. */
  policy?: UpstreamPolicy;
}

export interface MirrorEvents {
  onManifest?(outcome: NonNullable<ManifestResponse['cache']>): void;
  onBlob?(outcome: 'hit' | 'miss'): void;
  /** `not_stored`: served to its clients, but there was no room under storage.maxSize. */
  onFill?(outcome: 'done' | 'failed' | 'not_stored', bytes: number, error?: Error): void;
  onDigestMismatch?(): void;
  /** A manifest was served from (or into) the store: eviction's last-access record. */
  onManifestServed?(storeName: string, digest: Digest): void;
  /** A request the allow and deny lists deny (enforce) or would deny (report). */
  onPolicyDenial?(upstream: string, mode: 'enforce' | 'report'): void;
}

export type UpstreamRoute = Route<UpstreamClient>;

/** Upstream failures that make a stale answer better than none. */
function isUpstreamFailure(e: unknown): boolean {
  return e instanceof MirrorError && ['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_BAD_RESPONSE', 'TOOMANYREQUESTS'].includes(e.code);
}

export class MirrorRegistry implements Registry {
  readonly #fills = new Map<string, BlobFill>();
  readonly #flights = new Map<string, Promise<ManifestResponse>>();
  /** store name + tag → when the tag was last confirmed with the upstream. */
  readonly #tagChecked = new LRUCache<string, number>({ max: 20_000 });
  /** Fills that found no room (storage.maxSize) while their staged copy still serves clients. */
  readonly #unstored = new Set<BlobFill>();
  /** Streams of blobs open now, per digest (eviction leaves them alone: an object store has no unlink). */
  readonly #reading = new Map<string, number>();
  /** Room under storage.maxSize, made before a blob or manifest is stored (compose sets the evictor). */
  space?: StoreSpace;

  constructor(
    readonly store: RegistryStore,
    public router: Router<UpstreamClient>,
    private opts: MirrorRegistryOptions,
    private readonly log: Logger,
    private readonly events: MirrorEvents = {},
    /** Replicas sharing the bucket (fleet.ts); absent for a single airlock. */
    readonly fleet?: Fleet,
  ) {}

  /** A reloaded configuration: new routes and upstreams (fills in progress finish on the old ones), new TTLs. */
  reconfigure(router: Router<UpstreamClient>, opts: MirrorRegistryOptions): void {
    this.router = router;
    this.opts = opts;
    this.#tagChecked.clear();
  }

  /** Blob fills in progress. */
  get fillsInFlight(): number {
    return this.#fills.size;
  }

  /** Digests being filled now (eviction leaves them alone). */
  fillingDigests(): Set<string> {
    return new Set([...this.#fills.values()].map((f) => f.digest.toString()));
  }

  /** Digests being filled or read now. */
  inUseDigests(): Set<string> {
    const s = this.fillingDigests();
    for (const d of this.#reading.keys()) s.add(d);
    return s;
  }

  /** Counts `stream` as a reader of `digest` until it closes. */
  #reader<T extends Readable>(digest: Digest, stream: T): T {
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
        const local = this.router.isLocal(written) || !this.router.hasUpstreams || (await this.store.isMarkedLocal(written));
        if ((local && opts.create) || (await this.store.repositoryExists(written))) return { storeName: written, local, upstreamRepository: written };
      }
    }
    if (!route.local && (await this.store.isMarkedLocal(route.storeName))) return { storeName: route.storeName, local: true, upstreamRepository: route.upstreamRepository };
    return route;
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

  #single<T extends ManifestResponse>(key: string, fn: () => Promise<T>): Promise<ManifestResponse> {
    const pending = this.#flights.get(key);
    if (pending) return pending;
    const p = fn().finally(() => this.#flights.delete(key));
    this.#flights.set(key, p);
    return p;
  }

  // ---- manifests ----------------------------------------------------------------------------

  async getManifest(route: UpstreamRoute, ref: ManifestReference, accept: readonly string[]): Promise<ManifestResponse> {
    this.admit(route, ref.kind === 'tag' ? ref.tag : undefined);
    const m = await this.#manifest(route, ref);
    const chosen = await negotiateManifest(m, ref, accept, (d) => this.#manifest(route, { kind: 'digest', digest: d }).catch(() => undefined));
    const outcome = chosen.cache ?? 'hit';
    this.events.onManifest?.(outcome);
    this.events.onManifestServed?.(route.storeName, chosen.digest);
    return chosen;
  }

  async #manifest(route: UpstreamRoute, ref: ManifestReference): Promise<ManifestResponse> {
    const local = await this.store.getManifest(route.storeName, ref);
    const upstream = route.upstream;
    if (ref.kind === 'digest') {
      if (local) return { ...local, cache: 'hit' };
      if (!upstream) throw route.refusal ? refusedError(route.refusal) : manifestUnknown(route.storeName, ref);
      return this.#single(`${route.storeName}@${ref.digest.toString()}`, async () => ({
        ...(await this.#fetchManifest(route, upstream, ref.digest.toString(), ref.digest)),
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
            this.store.forgetTag(route.storeName, ref.tag);
            const now = await this.store.getManifest(route.storeName, ref);
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
        const fetched = await this.#fetchManifest(route, upstream, ref.tag, undefined, ref.tag);
        this.#tagChecked.set(key, Date.now());
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
  async #fetchManifest(route: UpstreamRoute, upstream: UpstreamClient, reference: string, expected?: Digest, tag?: string): Promise<StoredManifest> {
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
    // Under storage.maxSize, room first; with none, the manifest is served but not stored.
    if (!this.space || (await this.store.statBlob(actual))) return this.store.putManifest(route.storeName, res.bytes, tag, algorithm);
    const room = await this.space.reserve(res.bytes.length, actual.toString());
    if (!room) {
      this.log.warn({ repository: route.storeName, reference, digest: actual.toString(), sizeBytes: res.bytes.length }, 'manifest served but not stored: no room under storage.maxSize (the rest is pinned, local or in use)');
      return { digest: actual, bytes: res.bytes, mediaType: parseManifest(res.bytes).mediaType };
    }
    let stored: StoredManifest;
    try {
      stored = await this.store.putManifest(route.storeName, res.bytes, tag, algorithm);
    } catch (e) {
      room.settle(false);
      throw e;
    }
    room.settle(true);
    return stored;
  }

  // ---- blobs --------------------------------------------------------------------------------

  /**
   * A blob held for the target's repository (its size), or the upstream to fill it from. Bytes
   * held for another repository count once the upstream confirms, with a HEAD and no transfer,
   * that this repository has the blob too.
   */
  async #findBlob(route: UpstreamRoute, digest: Digest): Promise<{ size: number } | { route: UpstreamRoute; upstream: UpstreamClient }> {
    const [info, linked] = await Promise.all([this.store.statBlob(digest), this.store.isBlobLinked(route.storeName, digest)]);
    const upstream = route.upstream;
    if (info && linked) return { size: info.size };
    if (!upstream) {
      if (route.refusal && !info) throw refusedError(route.refusal);
      throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
    }
    if (info) {
      const size = await upstream.headBlob(route.upstreamRepository, digest.toString());
      if (size === undefined) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
      await this.store.linkBlob(route.storeName, digest);
      return { size: info.size };
    }
    return { route, upstream };
  }

  async getBlob(route: UpstreamRoute, digest: Digest, opts?: { head?: boolean }): Promise<BlobResponse> {
    this.admit(route);
    const found = await this.#findBlob(route, digest);
    if ('size' in found) return this.#local(digest, found.size);
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
        const stored = await this.store.statBlob(digest);
        if (!stored) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
        return this.#local(digest, stored.size);
      }
      // Not stored (no room under storage.maxSize): the fill's staged copy serves it all the same.
    }
    const size = fill.size ?? 0;
    this.events.onBlob?.('miss');
    return { digest, size, cache: 'miss', rangeable: false, open: async (range) => this.#reader(digest, fill.follow(range?.start, range?.end)) };
  }

  /**
   * Makes sure a blob of the target is in the store, without serving it (prefetch): present
   * blobs cost nothing (or a HEAD when held for another repository); a missing one joins or
   * starts the fill and waits for its commit. `onBytes` reports progress.
   */
  async fetchBlob(route: UpstreamRoute, digest: Digest, onBytes?: (n: number) => void): Promise<{ fetched: boolean; size: number }> {
    this.admit(route);
    const found = await this.#findBlob(route, digest);
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
    const stored = await this.store.statBlob(digest);
    if (!stored) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
    if (stored.size > seen) onBytes?.(stored.size - seen);
    return { fetched: true, size: stored.size };
  }

  #local(digest: Digest, size: number): BlobResponse {
    this.events.onBlob?.('hit');
    const redirect = this.opts.redirect ? () => this.store.blobURL(digest, 20 * 60) : undefined;
    return {
      redirect,
      digest,
      size,
      cache: 'hit',
      rangeable: true,
      open: async (range) => {
        const s = await this.store.openBlob(digest, range);
        // Removed between stat and open (gc, eviction): a clean 404 rather than a broken stream.
        if (!s) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
        return this.#reader(digest, s);
      },
    };
  }

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
    const repo = route.upstreamRepository;
    const fromUpstream: FillSource = {
      open: async (offset, ctl) => {
        ctl.claim();
        const res = await upstream.getBlob(repo, digest.toString(), offset);
        const len = Number(res.headers['content-length']);
        let start = 0;
        let total = Number.isSafeInteger(len) ? len : undefined;
        if (res.statusCode === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
          if (!m) {
            res.body.destroy();
            throw new UpstreamBadResponseError(`upstream ${upstream.name} sent a 206 without a valid Content-Range`);
          }
          start = Number(m[1]);
          total = m[3] === '*' ? undefined : Number(m[3]);
        }
        return { total, start, body: res.body };
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
          // Blob bytes received from the upstream (manifests are counted by the client itself).
          upstream.stats.bytes += bytes - (fleetSource?.otherBytes ?? 0);
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

  /**
   * A blob for another replica of the fleet (its fleet port): this replica's fill of it as it
   * grows, from `offset`, or the stored blob; undefined when it has neither.
   */
  async peerFill(digest: Digest, offset: number): Promise<{ size: number; body: Readable } | undefined> {
    const fill = [...this.#fills.values()].find((f) => f.digest.equals(digest) && f.state === 'running');
    if (fill) {
      try {
        await fill.ready;
      } catch {
        return undefined;
      }
      if (fill.size !== undefined && offset <= fill.size) return { size: fill.size, body: fill.follow(offset) };
      return undefined;
    }
    const info = await this.store.statBlob(digest);
    if (!info || offset > info.size) return undefined;
    const body = offset < info.size ? await this.store.openBlob(digest, { start: offset, end: info.size - 1 }) : Readable.from([]);
    return body ? { size: info.size, body: this.#reader(digest, body) } : undefined;
  }

  // ---- listings -----------------------------------------------------------------------------

  async listTags(route: UpstreamRoute, page: PageRequest): Promise<Page> {
    this.admit(route);
    const local = await this.store.listTags(route.storeName);
    let remote: string[] | undefined;
    if (route.upstream) {
      try {
        remote = await route.upstream.listTags(route.upstreamRepository);
      } catch (e) {
        if (!local || !isUpstreamFailure(e)) throw e;
        this.log.warn({ repository: route.storeName, err: (e as Error).message }, 'upstream unavailable; listing cached tags');
      }
    }
    if (!local && !remote) {
      if (route.refusal) throw refusedError(route.refusal);
      throw new NameUnknownError('repository name not known to registry', { detail: { name: route.storeName } });
    }
    const all = [...new Set([...(local ?? []), ...(remote ?? [])])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // Without n, every tag, as Distribution answers (and scripts that ignore Link expect).
    return paginate(all, page, Number.MAX_SAFE_INTEGER);
  }

  catalog(page: PageRequest, visible?: (storeName: string) => boolean): Promise<Page> {
    return catalogPage(this.store, page, this.opts.defaultPageSize, visible);
  }
}

function manifestUnknown(repo: string, ref: ManifestReference): ManifestUnknownError {
  const detail = ref.kind === 'tag' ? { name: repo, tag: ref.tag } : { name: repo, digest: ref.digest.toString() };
  return new ManifestUnknownError(undefined, { detail });
}
