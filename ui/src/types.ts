// The console API's shapes (see the contract in docs: GET/POST under <ui.path>/api/).

export interface Session {
  user: string | null;
  authEnabled: boolean;
  anonymousRead?: boolean;
  csrf: string | null;
  canDelete: boolean;
  canAdminister: boolean;
  readOnly: boolean;
  version: string;
  registry: string;
}

export interface Series {
  step: number;
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

export interface Upstream {
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
  upstreams: Upstream[];
  fills: Fill[];
  evictions: Eviction[];
}

export type RepoSort = 'name' | 'size' | 'images' | 'lastPulled' | 'pulls';

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

export interface TagRow {
  tag: string;
  digest: string;
  mediaType: string;
  size: number;
  lastPulled: number | null;
  pinned: boolean;
}

export interface Repository {
  name: string;
  kind: 'local' | 'mirror';
  upstream: string | null;
  size: number;
  pinned: boolean;
  tags: TagRow[];
  untagged: { digest: string; mediaType: string; size: number; lastPulled: number | null }[];
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
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

export interface Descriptor {
  digest: string;
  size: number;
  mediaType: string;
}

export interface Image {
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
  platforms?: (Descriptor & { platform: Platform })[];
  layers?: Descriptor[];
  config?: ImageConfig;
  referrers: { artifactType: string; items: (Descriptor & { annotations?: Record<string, string> | null })[] }[];
}

export interface PrefetchEntry {
  image: string;
  platforms: string[] | null;
  lastRun: number | null;
  outcome: string | null;
  error: string | null;
  digest: string | null;
}

export interface PrefetchState {
  every: number | null;
  nextRun: number | null;
  running: boolean;
  entries: PrefetchEntry[];
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
  bundles: Bundle[];
  auditEnabled?: boolean;
  evictions: Eviction[];
}

export interface LoadedImages {
  images: { name: string; tag: string | null; digest: string }[];
}
