/**
 * Prefetch: warms the store with a list of images ahead of need, through the same pull-through
 * path clients use (so a prefetch and a client pulling the same blob share one fill).
 *
 * Idempotent and resumable: a blob already in the store is skipped without a transfer, and a tag
 * whose digest has not moved costs one HEAD. An interrupted run leaves only temp files (removed
 * at the next start); running it again fetches what is still missing.
 */
import pLimit from 'p-limit';
import type { PrefetchConfig, PrefetchImageConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import type { Digest } from '../oci/digest.js';
import { blobDescriptors, formatPlatform, parseManifest, parsePlatform, platformMatches, type Descriptor, type Platform } from '../oci/manifest.js';
import { MANIFEST_MEDIA_TYPES } from '../oci/media-types.js';
import { parseImageReference, type ManifestReference } from '../oci/reference.js';
import { selectTags } from '../oci/tag-pattern.js';
import type { PullThrough, UpstreamRoute } from '../mirror/pull-through.js';
import type { Target } from '../mirror/image-source.js';
import { imageTarget } from '../mirror/router.js';

/** One concrete image to fetch: a reference with a tag or a digest. */
export interface PrefetchImage {
  /** As the operator wrote it, with the selected tag for pattern entries. */
  label: string;
  target: Target;
  ref: ManifestReference;
}

export interface PrefetchResult {
  image: string;
  digest?: string;
  platforms: string[];
  newBlobs: number;
  bytes: number;
  ms: number;
  outcome: 'ok' | 'failed';
  error?: string;
}

export interface PrefetchProgress {
  imagesDone: number;
  imagesTotal: number;
  /** Bytes transferred from upstreams so far. */
  bytes: number;
  /** Bytes of the blobs found missing so far (grows as manifests are read). */
  bytesPlanned: number;
  startedAt: number;
}

export interface PrefetchReport {
  results: PrefetchResult[];
  ms: number;
}

export interface PrefetchOptions {
  concurrency: number;
  /** Platforms of an index to fetch; undefined: every platform. */
  platforms?: Platform[];
  defaultRegistry: string;
  onProgress?(p: PrefetchProgress): void;
  /** Pin what is prefetched (the list's images; false for a console user who may not pin). */
  pin?: boolean;
}

/** Index nesting we follow (an index of indexes is legal, deeper is not seen in practice). */
const MAX_DEPTH = 3;

export class Prefetcher {
  readonly #limit;
  /** One transfer per digest per run, even when several images share a layer. */
  readonly #blobs = new Map<string, Promise<{ fetched: boolean; bytes: number }>>();
  readonly #progress: PrefetchProgress;

  constructor(private readonly registry: PullThrough, private readonly opts: PrefetchOptions, private readonly log: Logger) {
    this.#limit = pLimit(opts.concurrency);
    this.#progress = { imagesDone: 0, imagesTotal: 0, bytes: 0, bytesPlanned: 0, startedAt: Date.now() };
  }

  /** Prefetch options from mirror.yml. */
  static options(config: PrefetchConfig, defaultRegistry: string): PrefetchOptions {
    return { concurrency: config.concurrency, platforms: config.platforms?.map(parsePlatform), defaultRegistry };
  }

  /**
   * Turns configured entries (references, or a name with tag patterns) into concrete images.
   * Listing a repository's tags can fail; that entry is then a failed result.
   */
  async expand(entries: readonly PrefetchImageConfig[]): Promise<{ images: PrefetchImage[]; failures: PrefetchResult[] }> {
    const images: PrefetchImage[] = [];
    const failures: PrefetchResult[] = [];
    for (const entry of entries) {
      if (typeof entry === 'string') {
        const r = parseImageReference(entry, this.opts.defaultRegistry);
        const ref: ManifestReference = r.digest ? { kind: 'digest', digest: r.digest } : { kind: 'tag', tag: r.tag ?? 'latest' };
        images.push({ label: entry, target: imageTarget(r, this.opts.defaultRegistry), ref });
        continue;
      }
      const r = parseImageReference(entry.name, this.opts.defaultRegistry);
      const target = imageTarget(r, this.opts.defaultRegistry);
      try {
        const route = await this.registry.resolve(target);
        // A repository the allow and deny lists deny fails here, before its tags are listed.
        const page = await this.registry.listTags(route, {});
        // Tags they deny are left out of the selection (and of `newest`); a reference naming
        // one fails instead. An entry whose every matching tag is denied fails with the rule.
        const denied = new Set(page.items.filter((t) => this.registry.denial(route, t) !== undefined));
        const tags = selectTags(page.items.filter((t) => !denied.has(t)), entry.tags, entry.newest);
        const skipped = selectTags([...denied], entry.tags);
        if (tags.length === 0 && skipped[0] !== undefined) throw new Error(`every tag matching ${JSON.stringify(entry.tags ?? [])} is denied: ${this.registry.denial(route, skipped[0])?.message ?? ''}`);
        if (tags.length === 0) throw new Error(`no tag matches ${JSON.stringify(entry.tags ?? [])}`);
        if (skipped.length > 0) this.log.info({ image: entry.name, tags: skipped }, 'tags denied by policy left out');
        for (const tag of tags) images.push({ label: `${entry.name}:${tag}`, target, ref: { kind: 'tag', tag } });
      } catch (e) {
        failures.push({ image: entry.name, platforms: [], newBlobs: 0, bytes: 0, ms: 0, outcome: 'failed', error: (e as Error).message });
      }
    }
    return { images, failures };
  }

  async run(entries: readonly PrefetchImageConfig[]): Promise<PrefetchReport> {
    const started = Date.now();
    const { images, failures } = await this.expand(entries);
    this.#progress.imagesTotal = images.length + failures.length;
    this.#progress.imagesDone = failures.length;
    this.#emit();
    const results = await Promise.all(images.map((img) => this.#image(img)));
    return { results: [...failures, ...results], ms: Date.now() - started };
  }

  #emit(): void {
    this.opts.onProgress?.({ ...this.#progress });
  }

  async #image(img: PrefetchImage): Promise<PrefetchResult> {
    const started = Date.now();
    const counts = { newBlobs: 0, bytes: 0 };
    const platforms = new Set<string>();
    try {
      const route = await this.registry.resolve(img.target);
      const top = await this.#limit(() => this.registry.getManifest(route, img.ref, MANIFEST_MEDIA_TYPES, { pull: false }));
      await this.#manifest(img, route, top.digest, top.bytes, top.mediaType, 0, counts, platforms);
      this.log.info({ image: img.label, digest: top.digest.toString(), newBlobs: counts.newBlobs, bytes: counts.bytes }, 'prefetched');
      return { image: img.label, digest: top.digest.toString(), platforms: [...platforms], ...counts, ms: Date.now() - started, outcome: 'ok' };
    } catch (e) {
      const error = (e as Error).message;
      this.log.warn({ image: img.label, err: error }, 'prefetch failed');
      return { image: img.label, platforms: [...platforms], ...counts, ms: Date.now() - started, outcome: 'failed', error };
    } finally {
      this.#progress.imagesDone++;
      this.#emit();
    }
  }

  async #manifest(img: PrefetchImage, route: UpstreamRoute, digest: Digest, bytes: Buffer, mediaType: string, depth: number, counts: { newBlobs: number; bytes: number }, platforms: Set<string>, platform?: Platform): Promise<void> {
    const m = parseManifest(bytes, mediaType);
    if (this.opts.pin !== false) await this.registry.store.pins.pin(route.storeName, digest);
    if (m.kind === 'index') {
      if (depth >= MAX_DEPTH) throw new Error(`index nesting deeper than ${MAX_DEPTH} at ${digest.toString()}`);
      const filter = this.opts.platforms;
      const children = filter ? m.manifests.filter((c) => filter.some((f) => platformMatches(c.platform, f))) : m.manifests;
      if (children.length === 0) throw new Error(`the index has no manifest for ${filter?.map(formatPlatform).join(', ')}`);
      await Promise.all(
        children.map(async (c) => {
          const child = await this.#limit(() => this.registry.getManifest(route, { kind: 'digest', digest: c.digest }, MANIFEST_MEDIA_TYPES, { pull: false }));
          await this.#manifest(img, route, child.digest, child.bytes, child.mediaType, depth + 1, counts, platforms, c.platform);
        }),
      );
      return;
    }
    if (platform) platforms.add(formatPlatform(platform));
    await Promise.all(
      blobDescriptors(m).map(async (b) => {
        const r = await this.#blob(route, b);
        if (r.fetched) {
          counts.newBlobs++;
          counts.bytes += r.bytes;
        }
      }),
    );
  }

  #blob(route: UpstreamRoute, b: Descriptor): Promise<{ fetched: boolean; bytes: number }> {
    const key = `${route.storeName} ${b.digest.toString()}`;
    let p = this.#blobs.get(key);
    if (!p) {
      p = this.#limit(async () => {
        // Counted as planned from the manifest's size until it turns out to be present.
        this.#progress.bytesPlanned += b.size;
        // Waits for the fill's commit without reading the bytes back: nothing is served.
        const r = await this.registry.fetchBlob(route, b.digest, (n) => {
          this.#progress.bytes += n;
          this.#emit();
        });
        if (!r.fetched) this.#progress.bytesPlanned -= b.size;
        this.#emit();
        return { fetched: r.fetched, bytes: r.fetched ? r.size : 0 };
      });
      this.#blobs.set(key, p);
    }
    return p;
  }
}

/**
 * Runs the configured list every `schedule` in serve, one run at a time; a run that fails is
 * logged and retried at the next tick. Returns a stop function.
 */
export function schedulePrefetch(run: () => Promise<PrefetchReport>, everyMs: number, log: Logger): () => Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    current = run()
      .then((r) => {
        const failed = r.results.filter((x) => x.outcome === 'failed');
        log.info({ images: r.results.length, failed: failed.length, ms: r.ms, newBlobs: r.results.reduce((a, x) => a + x.newBlobs, 0) }, 'scheduled prefetch finished');
      })
      .catch((e: unknown) => log.error({ err: e }, 'scheduled prefetch failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, everyMs);
      });
  };
  timer = setTimeout(tick, 0);
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await current;
  };
}
