/**
 * The configuration contract: the keys of mirror.yml, their types, defaults and validation.
 *
 * Key names are a contract with operators and scripts (see README "Configuration reference");
 * rename nothing. Unknown keys are refused, so a typo never silently falls back to a default.
 */
import { z } from 'zod';
import { parsePlatform } from '../oci/manifest.js';
import { checkTagPattern } from '../oci/tag-pattern.js';
import { REGISTRY_HOST, normalizeRegistryHost, parseImageReference } from '../oci/reference.js';
import { parseDuration, parseListen, parseSize } from './units.js';
import { STORAGE_DRIVER_NAMES, checkStorageDriver } from './storage-drivers.js';

export { parseDuration, parseListen, parseSize } from './units.js';

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try { return parseDuration(v); } catch (e) { ctx.addIssue({ code: 'custom', message: (e as Error).message }); return z.NEVER; }
});

/** A byte size: a number or "512MiB", "4.4GiB". */
const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try { return parseSize(v); } catch (e) { ctx.addIssue({ code: 'custom', message: (e as Error).message }); return z.NEVER; }
});

const listen = z.string().transform((v, ctx) => {
  try { return { address: v, ...parseListen(v) }; } catch (e) { ctx.addIssue({ code: 'custom', message: (e as Error).message }); return z.NEVER; }
});

const upstream = z.strictObject({
  /** https://registry-1.docker.io, or plain http:// for a registry on a trusted network. */
  url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL such as https://registry-1.docker.io' }),
  username: z.string().optional(),
  password: z.string().optional(),
  /** PEM file of certificate authorities to trust for this upstream, besides the default roots. */
  ca: z.string().optional(),
  /** Hosts (host or host:port) besides the upstream's own that may receive its credentials as a token realm. */
  tokenHosts: z.array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$/, 'expected a host name or host:port such as auth.example.com')).default([]),
  /** Follow blob redirects to loopback, link-local and private addresses although the upstream is not on one. */
  allowPrivateRedirects: z.boolean().default(false),
  /** Skip TLS verification (a lab's self-signed registry; never on the internet). */
  insecure: z.boolean().default(false),
  /** Connections to this upstream at once (requests beyond wait for one). */
  concurrency: z.number().int().min(1).max(256).default(16),
  timeouts: z.strictObject({
    connect: duration.default(10_000),
    /** Longest wait for headers, and for the next byte of a body. */
    read: duration.default(30_000),
  }).prefault({}),
  /** Attempts after the first on connection errors, 5xx and 429. */
  retries: z.number().int().min(0).max(10).default(3),
  /**
   * Under this many requests left in the upstream's rate-limit window (its ratelimit-remaining
   * header), stored tags are served without revalidation until the window resets; 0: never.
   */
  rateLimitReserve: z.number().int().min(0).max(1_000_000).default(10),
  /**
   * Repositories on this upstream (library/nginx, with a tag pattern: library/nginx:1.27.*) that
   * may be fetched and served; with a list, everything else is denied (README "Allow and deny lists").
   */
  allow: z.array(z.string().min(1).max(300)).optional(),
  /** Repositories (and tags) on this upstream never fetched nor served; deny wins over allow. */
  deny: z.array(z.string().min(1).max(300)).default([]),
}).refine((u) => (u.username === undefined) === (u.password === undefined), { message: 'username and password go together' });

const platform = z.string().refine((v) => {
  try { parsePlatform(v); return true; } catch { return false; }
}, { message: 'expected a platform such as linux/amd64 or linux/arm64/v8' });

const imageReference = z.string().refine((v) => {
  try { parseImageReference(v); return true; } catch { return false; }
}, { message: 'expected an image reference such as alpine:3.20, ghcr.io/org/app:1.4 or quay.io/x/y@sha256:…' });

const prefetchImage = z.union([
  imageReference,
  z.strictObject({
    /** A repository without tag: library/nginx, ghcr.io/org/app. */
    name: z.string().refine((v) => {
      try { const r = parseImageReference(v); return r.tag === 'latest' && !r.digest && !/[:@][^/]*$/.test(v); } catch { return false; }
    }, { message: 'expected a repository name without tag or digest, such as library/nginx' }),
    /** Globs (1.27.*) or semver ranges (>=1.26 <2) over the upstream's tags; default every tag. */
    tags: z.array(z.string().min(1).max(128)).min(1).optional(),
    /** At most this many matching tags, newest first. */
    newest: z.number().int().min(1).max(10_000).optional(),
  }),
]);

export const configSchema = z.strictObject({
  /** host:port to serve the registry API on. */
  listen: listen.default({ address: '0.0.0.0:5000', host: '0.0.0.0', port: 5000 }),
  storage: z.strictObject({
    /** Root of the standard Distribution layout (registry:2's rootdirectory). Relative to the config file. */
    root: z.string().min(1).default('./data'),
    /** filesystem: the layout under root. s3: the layout in a bucket (root then holds only local spool files). */
    driver: z.enum(STORAGE_DRIVER_NAMES).default(STORAGE_DRIVER_NAMES[0]),
    /** The bucket, for driver s3. Distribution's s3 driver with `rootdirectory: <prefix>` serves the same keys. */
    s3: z.strictObject({
      /** http(s)://host:port of the S3 API (radosgw, MinIO); leave out for AWS. */
      endpoint: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL such as http://127.0.0.1:7480' }).optional(),
      region: z.string().min(1).default('us-east-1'),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name (3–63 lower-case letters, digits, dots, hyphens)'),
      /** Key prefix of the layout (Distribution's rootdirectory), without leading or trailing '/'. */
      prefix: z.string().regex(/^([A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)?$/, 'expected a key prefix such as airlock or mirrors/site-a (no leading or trailing /)').default(''),
      accessKey: z.string().optional(),
      secretKey: z.string().optional(),
      /** Path-style URLs (http://host/bucket/key): what radosgw and MinIO expect. */
      forcePathStyle: z.boolean().default(true),
      /** Multipart part size. */
      partSize: size.refine((v) => v >= 5 * 2 ** 20 && v <= 5 * 2 ** 30, { message: 'expected a part size between 5MiB and 5GiB' }).default(16 * 2 ** 20),
    }).refine((s) => (s.accessKey === undefined) === (s.secretKey === undefined), { message: 'accessKey and secretKey go together' }).optional(),
    /** Answer blob GETs with a 307 to a presigned URL of the object store (driver s3), so the bytes bypass airlock. */
    redirect: z.boolean().default(false),
    /** Serve the store as it is (read-only media): pulls only; nothing is ever written under root. Also on when root is found read-only at start. */
    readOnly: z.boolean().default(false),
    /** Cache limit: above evictAt × maxSize, least recently used mirrored images are evicted down to evictTo × maxSize. */
    maxSize: size.optional(),
    evictAt: z.number().gt(0).max(1).default(0.95),
    evictTo: z.number().gt(0).max(1).default(0.85),
    /** Images served more recently than this are not evicted (they may be mid-pull). */
    evictMinAge: duration.default(60_000),
    delete: z.strictObject({
      /** DELETE of manifests, tags and blobs over the API (as Distribution: off by default). */
      enabled: z.boolean().default(false),
    }).prefault({}),
  }).prefault({}),
  /** Pushes: who may push where, and how long an unfinished upload is kept. */
  push: z.strictObject({
    /** Names that accept pushes (globs, `**` spans components) while upstreams are configured; with none, every name does. These names are served from the store only. */
    repositories: z.array(z.string().min(1).max(255)).default([]),
    /** An upload untouched this long is removed (serve sweeps hourly; gc too). */
    abandonAfter: duration.default(24 * 3_600_000),
    /** Largest blob a push may upload; default no limit beyond storage.maxSize. */
    maxBlobSize: size.optional(),
    /** Upload sessions one user (or, without logins, one client address) may hold open at once. */
    maxUploads: z.number().int().min(1).max(10_000).default(64),
  }).prefault({}),
  /** HTTPS on the listen port; both files are read again on SIGHUP. */
  tls: z.strictObject({
    cert: z.string().min(1),
    key: z.string().min(1),
  }).optional(),
  /** Client logins (HTTP Basic against a bcrypt htpasswd file) and what each user may do. */
  auth: z.strictObject({
    htpasswd: z.string().min(1),
    /** What clients without a login may do: nothing, or pull. */
    anonymous: z.enum(['none', 'read']).default('none'),
    /** Shown by clients in the login prompt. */
    realm: z.string().min(1).max(100).default('airlock'),
    /** Without rules every htpasswd user may pull, push and delete everywhere. */
    rules: z.array(z.strictObject({
      /** htpasswd user names; "*" is any logged-in user. */
      users: z.array(z.string().min(1)).min(1),
      /** Repository globs (`team/**`); default every repository. */
      repositories: z.array(z.string().min(1).max(255)).min(1).default(['**']),
      actions: z.array(z.enum(['pull', 'push', 'delete'])).min(1),
    })).optional(),
    /** Failed logins of one user from one client address within a minute before it gets 429s (an address: 10x over all its users). */
    maxFailures: z.number().int().min(1).max(10_000).default(10),
  }).optional(),
  /** Registries to mirror, keyed by the host clients know them by (docker.io, ghcr.io). */
  upstreams: z.record(z.string().regex(REGISTRY_HOST, 'expected a registry host name such as docker.io'), upstream).default({}),
  /** Where names without a registry go (Docker's registry-mirrors sends them so). */
  defaultUpstream: z.string().default('docker.io'),
  /** How upstreams.<host>.allow and .deny apply: enforce (403 DENIED), or report (serve; log and count what would be denied). */
  policy: z.strictObject({
    mode: z.enum(['enforce', 'report']).default('enforce'),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).prefault({}),
  /**
   * The audit log: one JSON line per pull, push, delete, tag move, import, freeze, removal,
   * failed login and reload. A file path (appended; reopened on SIGHUP) or "-" for stdout.
   */
  audit: z.strictObject({
    file: z.string().min(1).optional(),
  }).prefault({}),
  http: z.strictObject({
    /** Bound on manifest bodies read or served from memory. */
    maxManifestSize: size.default(4 * 2 ** 20),
    /** Entries a catalog or tags page holds when the client gives no n, and the most it may ask for. */
    maxPageEntries: z.number().int().min(1).max(100_000).default(1000),
    /** How long a graceful shutdown waits for in-flight responses. */
    shutdownTimeout: duration.default(30_000),
    /**
     * A request body slower than this (bytes per second, averaged over bodyRateWindow) is cut
     * with 408: a client trickling bytes cannot hold a connection and an upload for ever. 0: off.
     */
    minBodyRate: size.default(1024),
    bodyRateWindow: duration.refine((v) => v >= 1000, { message: 'expected at least 1s' }).default(30_000),
  }).prefault({}),
  cache: z.strictObject({
    /** How long a tag is trusted before a HEAD revalidates it with the upstream. */
    tagTTL: duration.default(5 * 60_000),
    /** Times a broken blob transfer is resumed (Range from the received offset). */
    maxResumes: z.number().int().min(0).max(20).default(3),
    /** Bytes of manifests kept in memory (immutable, by digest). */
    manifestMemory: size.default(64 * 2 ** 20),
  }).prefault({}),
  metrics: z.strictObject({
    /** Serve /metrics on this host:port instead of the registry's port. */
    listen: listen.optional(),
  }).prefault({}),
  /**
   * Replicas on one bucket (storage.driver s3) fetching each blob once for the whole fleet: the
   * first to take a blob's lease fills it; the others stream it from that replica's fleet port.
   */
  fleet: z.strictObject({
    /** host:port of the internal endpoint other replicas read fills from (keep it off the clients' network). */
    listen,
    /** The URL other replicas reach this one's fleet port by (http://10.0.0.5:5001). */
    advertise: z.url({ protocol: /^https?$/, error: 'expected the URL other replicas reach this one by, such as http://10.0.0.5:5001' }),
    /** A filling replica renews its lease every third of this; a lease not renewed for this long is taken over. */
    leaseTTL: duration.refine((v) => v >= 1000, { message: 'expected at least 1s' }).default(15_000),
    /**
     * The shared token the fleet port demands (Authorization: Bearer). Required: without it,
     * anyone who reaches the port reads any blob, private upstreams' layers included.
     */
    secret: z.string({ error: (i) => (i.input === undefined ? 'required with fleet: a shared token of 16+ characters the replicas send each other (anyone who reaches the fleet port without it reads any blob)' : 'expected a string') })
      .min(16, 'expected at least 16 characters'),
  }).optional(),
  /** The web console and its JSON API (archives too), on the registry port. */
  ui: z.strictObject({
    enabled: z.boolean().default(true),
    /** Where it is served; never under /v2 or the health and metrics routes. */
    path: z.string()
      .regex(/^(\/[a-z0-9][a-z0-9._-]*)+$/, 'expected a path such as /ui (lower case, no trailing slash)')
      .refine((p) => !['/v2', '/metrics', '/healthz', '/readyz'].some((r) => p === r || p.startsWith(`${r}/`)), { message: 'expected a path outside /v2, /metrics, /healthz and /readyz' })
      .default('/ui'),
    /** A console login ends after this long without a request. */
    sessionIdle: duration.default(8 * 3_600_000),
  }).prefault({}),
  /** airlock import (and freeze --have): the public keys (PEM files) a bundle or inventory must be signed by. */
  import: z.strictObject({
    trust: z.array(z.string().min(1)).default([]),
  }).prefault({}),
  /** Images to warm ahead of need (airlock prefetch, and serve on a schedule). */
  prefetch: z.strictObject({
    /** serve runs the list this often; without it, only `airlock prefetch` runs it. */
    schedule: duration.optional(),
    /** Manifests and blobs fetched at once. */
    concurrency: z.number().int().min(1).max(64).default(4),
    /** Platforms of an index to fetch; default every platform. */
    platforms: z.array(platform).min(1).optional(),
    images: z.array(prefetchImage).default([]),
  }).prefault({}),
});

export type RawConfig = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type StorageConfig = Config['storage'];
export type LogConfig = Config['log'];
export type HttpConfig = Config['http'];
export type CacheConfig = Config['cache'];
export type PrefetchConfig = Config['prefetch'];
export type ImportConfig = Config['import'];
export type PushConfig = Config['push'];
export type AuthConfig = NonNullable<Config['auth']>;
export type TlsConfig = NonNullable<Config['tls']>;
export type PrefetchImageConfig = PrefetchConfig['images'][number];
export type PolicyConfig = Config['policy'];

/**
 * One entry of upstreams.<host>.allow or .deny: a glob over the repository's name on that
 * upstream (`library/nginx`, `org/*`; `**` spans components), optionally `:` and a tag pattern
 * (a glob like `1.27.*` or a semver range like `>=1.26 <2`, as prefetch's tags). Throws a
 * one-line message for an entry that could never match what the upstream is asked for.
 */
export function parsePolicyRule(host: string, rule: string): { repository: string; tag?: string } {
  const colon = rule.indexOf(':');
  const repository = colon < 0 ? rule : rule.slice(0, colon);
  const tag = colon < 0 ? undefined : rule.slice(colon + 1);
  if (!/^[^\sA-Z@]+$/.test(repository)) throw new TypeError(`"${rule}": expected a repository glob in lower case, such as library/nginx or org/**, optionally :TAG-PATTERN`);
  const registry = normalizeRegistryHost(host);
  const first = repository.split('/')[0] as string;
  if (repository.includes('/') && normalizeRegistryHost(first) === registry) {
    throw new TypeError(`"${rule}": rules name the repository on ${host} without its host, such as "${repository.slice(first.length + 1)}"`);
  }
  if (registry === 'docker.io' && !repository.includes('/') && !repository.includes('**')) {
    throw new TypeError(`"${rule}" matches nothing: Docker Hub repositories have a namespace; write "library/${repository}" for an official image`);
  }
  if (tag !== undefined) {
    try {
      checkTagPattern(tag);
    } catch (e) {
      throw new TypeError(`"${rule}": ${(e as Error).message}`);
    }
  }
  return tag === undefined ? { repository } : { repository, tag };
}

/** One line per problem: `storage.root: expected string, received number`. */
/** Cross-key checks that the schema cannot express. */
export function checkConfig(c: Config): string | undefined {
  const hosts = Object.keys(c.upstreams);
  if (hosts.length > 0 && !hosts.some((h) => normalizeRegistryHost(h) === normalizeRegistryHost(c.defaultUpstream))) {
    return `defaultUpstream: "${c.defaultUpstream}" is not one of the configured upstreams (${hosts.join(', ')})`;
  }
  const storage = checkStorageDriver(c);
  if (storage) return storage;
  if (c.storage.evictTo >= c.storage.evictAt) return `storage.evictTo (${c.storage.evictTo}) must be below storage.evictAt (${c.storage.evictAt})`;
  for (const [host, u] of Object.entries(c.upstreams)) {
    for (const list of ['allow', 'deny'] as const) {
      for (const [i, rule] of (u[list] ?? []).entries()) {
        try {
          parsePolicyRule(host, rule);
        } catch (e) {
          return `upstreams.${host}.${list}.${i}: ${(e as Error).message}`;
        }
      }
    }
  }
  for (const [i, img] of c.prefetch.images.entries()) {
    if (typeof img === 'string') continue;
    for (const t of img.tags ?? []) {
      try {
        checkTagPattern(t);
      } catch (e) {
        return `prefetch.images.${i}.tags: ${(e as Error).message}`;
      }
    }
  }
  return undefined;
}

export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const key = i.path.map(String).join('.') || '(top level)';
      if (i.code === 'unrecognized_keys') {
        const where = i.path.length ? `${key}: ` : '';
        return `${where}unknown key ${i.keys.map((k) => `"${k}"`).join(', ')}`;
      }
      return `${key}: ${i.message}`;
    })
    .join('; ');
}
