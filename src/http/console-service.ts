/**
 * What the web console's JSON API (plugins/ui-api.ts) reads and does, declared here in http/ and
 * implemented in app/console/: the routes judge permissions, the service knows the store. The
 * shapes are the console's wire format (the contract with ui/).
 */

/** Whether the request's user may pull the stored repository `name` (others do not exist for them). */
export type MayPull = (name: string) => boolean;

export interface Series {
  /** Seconds per bucket. */
  step: number;
  /** Epoch ms of the first bucket; the last one is the current, partial bucket. */
  start: number;
  hits: number[];
  misses: number[];
  servedBytes: number[];
  fetchedBytes: number[];
}

export interface Totals {
  hitRatio: number | null;
  hits: number;
  misses: number;
  servedBytes: number;
  fetchedBytes: number;
}

export interface Fill {
  id: string;
  repository: string;
  digest: string;
  size: number | null;
  received: number;
  startedAt: number;
  upstream: string;
}

export interface Eviction {
  at: number;
  repository: string;
  digest: string;
  bytes: number;
}

export interface UpstreamState {
  name: string;
  url: string;
  state: 'ok' | 'breaker-open' | 'unknown';
  lastError: { message: string; at: number } | null;
  rateLimitRemaining: number | null;
  requests: number;
  errors: number;
}

export interface Overview {
  store: { bytes: number; blobs: number; images: number; repositories: number; maxSize: number | null; readOnly: boolean };
  traffic: { hour: Series; day: Series };
  totals: { hour: Totals; day: Totals };
  upstreams: UpstreamState[];
  fills: Fill[];
  evictions: Eviction[];
}

export type RepoSort = 'name' | 'size' | 'images' | 'lastPulled' | 'pulls';

export interface RepoQuery {
  q?: string;
  sort: RepoSort;
  order: 'asc' | 'desc';
  offset: number;
  limit: number;
}

export interface Repo {
  name: string;
  kind: 'local' | 'mirror';
  upstream: string | null;
  images: number;
  tags: number;
  size: number;
  lastPulled: number | null;
  pulls: number;
  pinned: boolean;
}

export interface RepoPage {
  total: number;
  offset: number;
  limit: number;
  items: Repo[];
}

export interface RepoDetail {
  name: string;
  kind: 'local' | 'mirror';
  upstream: string | null;
  size: number;
  pinned: boolean;
  tags: Array<{ tag: string; digest: string; mediaType: string; size: number; lastPulled: number | null; pinned: boolean }>;
  untagged: Array<{ digest: string; mediaType: string; size: number; lastPulled: number | null }>;
}

export interface ImageConfig {
  digest: string;
  size: number;
  created: string | null;
  os: string;
  architecture: string;
  variant?: string;
  entrypoint: string[] | null;
  cmd: string[] | null;
  env: string[];
  labels: Record<string, string>;
  user: string;
  workingDir: string;
}

export interface ImageDetail {
  name: string;
  reference: string;
  digest: string;
  mediaType: string;
  size: number;
  kind: 'index' | 'manifest';
  tags: string[];
  pinned: boolean;
  pulls: number;
  lastPulled: number | null;
  platforms?: Array<{ platform: { os: string; architecture: string; variant?: string }; digest: string; size: number; mediaType: string }>;
  layers?: Array<{ digest: string; size: number; mediaType: string }>;
  config?: ImageConfig;
  referrers: Array<{ artifactType: string; items: Array<{ digest: string; mediaType: string; size: number; annotations: Record<string, string> }> }>;
}

export interface PrefetchEntry {
  image: string;
  platforms: string[] | null;
  lastRun: number | null;
  outcome: string | null;
  error: string | null;
  digest: string | null;
}

export interface PrefetchStatus {
  every: number | null;
  nextRun: number | null;
  running: boolean;
  entries: PrefetchEntry[];
}

/** One image prefetched now (jobs/prefetch.ts's PrefetchResult). */
export interface PrefetchOutcome {
  image: string;
  digest?: string;
  platforms: string[];
  newBlobs: number;
  bytes: number;
  ms: number;
  outcome: 'ok' | 'failed';
  error?: string;
}

export interface Bundle {
  at: number;
  event: 'freeze' | 'import' | 'load';
  name: string;
  images: number;
  signer: string | null;
}

export interface Maintenance {
  gc: { running: boolean; last: { at: number; dryRun: boolean; report: unknown } | null };
  verify: { running: boolean; last: { at: number; report: unknown } | null };
  auditEnabled: boolean;
  bundles: Bundle[];
  evictions: Eviction[];
}

/** Who asked, for the audit line of a console delete. */
export interface Actor {
  user?: string;
  address: string;
}

export interface ConsoleService {
  overview(may: MayPull): Promise<Overview>;
  /** Blob fills running now, of repositories `may` allows. */
  fills(may: MayPull): Fill[];
  repositories(query: RepoQuery, may: MayPull): Promise<RepoPage>;
  /** Undefined when the store holds no such repository. */
  repository(name: string): Promise<RepoDetail | undefined>;
  /** Undefined when the store lacks it (never asks an upstream). Throws a 400 for a malformed ref. */
  image(name: string, ref: string): Promise<ImageDetail | undefined>;
  /** Deletes a tag, or a manifest by digest, as the registry's DELETE does (storage.delete.enabled). */
  deleteImage(name: string, ref: string, actor: Actor): Promise<void>;
  /** Whether deletes are enabled (storage.delete.enabled). */
  deleteEnabled(): boolean;
  pin(name: string, digest: string): Promise<void>;
  unpin(name: string, digest: string): Promise<void>;
  prefetchStatus(): PrefetchStatus;
  /** The stored repository an image reference resolves to (as a pull of it would). */
  storeNameOf(image: string): Promise<string>;
  /** `pin`: whether the user may pin there (prefetch pins what it warms). */
  prefetchOne(image: string, opts: { pin: boolean }): Promise<PrefetchOutcome>;
  /** Starts the whole list in the background; false when a run is already going. */
  prefetchAll(): boolean;
  /** `administer`: bundles (the audit log's paths) are shown to administrators only. */
  maintenance(may: MayPull, administer: boolean): Promise<Maintenance>;
  /** Throws a 409 when a gc runs already. */
  gc(opts: { dryRun: boolean; deleteUntagged?: boolean }): Promise<unknown>;
  /** Starts a verify in the background; false when one runs already. */
  verify(): boolean;
}
