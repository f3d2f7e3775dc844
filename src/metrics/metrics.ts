/**
 * Prometheus metrics (prom-client), one collector set per airlock. Counters are bumped by the events
 * the mirror, the HTTP layer, eviction and prefetch report; upstream totals are read from each
 * client's own counters when scraped, so the hot path pays nothing extra for them.
 */
import client from 'prom-client';

/**
 * What the metrics read of an upstream client when scraped, and the hook they set to see each
 * exchange. Declared here so that metrics/ depends on no layer above it (upstream/client.ts's
 * UpstreamClient has this shape).
 */
export interface MeteredUpstream {
  readonly name: string;
  readonly stats: { readonly requests: number; readonly errors: number; readonly bytes: number };
  /** False while the circuit breaker is open. */
  readonly available: boolean;
  readonly rateLimitReserve: number;
  /** The upstream's rate-limit counts until its window resets; then undefined. */
  rateLimitNow(): { remaining: number; limit?: number } | undefined;
  onExchange?: (status: number | 'error', seconds: number) => void;
}

export class Metrics {
  /** prom-client calls it a registry; here it is the set of collectors /metrics prints. */
  readonly collectors = new client.Registry();
  readonly requests: client.Counter<'endpoint' | 'method' | 'status'>;
  readonly responseBytes: client.Counter<'endpoint'>;
  readonly cache: client.Counter<'kind' | 'outcome'>;
  readonly upstreamLatency: client.Histogram<'upstream'>;
  readonly upstreamExchanges: client.Counter<'upstream' | 'status'>;
  readonly fillsInFlight: client.Gauge;
  readonly fills: client.Counter<'outcome'>;
  readonly fillsNotStored: client.Counter;
  readonly auditWriteErrors: client.Counter;
  readonly digestMismatches: client.Counter;
  readonly storeBytes: client.Gauge;
  readonly storeBlobs: client.Gauge;
  /** Registered on first use (storeCeiling, tlsCertExpires): an unset gauge would read 0. */
  #storeMaxBytes?: client.Gauge;
  #tlsCertExpiry?: client.Gauge;
  readonly evictions: client.Counter;
  readonly evictedBytes: client.Counter;
  readonly prefetchImages: client.Counter<'outcome'>;
  readonly policyDenials: client.Counter<'upstream' | 'mode'>;

  #upstreams: MeteredUpstream[] = [];
  #fillsInFlight: () => number = () => 0;
  /** Retired upstream clients' totals, so counters never go backwards across a reload. */
  readonly #retired = new Map<string, { requests: number; errors: number; bytes: number }>();

  /** `storeReadOnly`: the store is served read-only (storage.readOnly, or found so at start). */
  constructor(upstreams: ReadonlyMap<string, MeteredUpstream>, opts: { storeReadOnly?: boolean } = {}) {
    const r = [this.collectors];
    client.collectDefaultMetrics({ register: this.collectors, prefix: 'airlock_' });
    this.requests = new client.Counter({ name: 'airlock_http_requests_total', help: 'Requests answered, by endpoint, method and status', labelNames: ['endpoint', 'method', 'status'], registers: r });
    this.responseBytes = new client.Counter({ name: 'airlock_http_response_bytes_total', help: 'Bytes of response bodies sent, by endpoint', labelNames: ['endpoint'], registers: r });
    this.cache = new client.Counter({ name: 'airlock_cache_requests_total', help: 'Manifest and blob lookups by outcome (hit, miss, stale, revalidated)', labelNames: ['kind', 'outcome'], registers: r });
    this.upstreamExchanges = new client.Counter({ name: 'airlock_upstream_responses_total', help: 'HTTP exchanges with upstreams, by status (or error)', labelNames: ['upstream', 'status'], registers: r });
    this.upstreamLatency = new client.Histogram({ name: 'airlock_upstream_request_duration_seconds', help: 'Time to an upstream response\'s headers', labelNames: ['upstream'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: r });
    const fills = () => this.#fillsInFlight();
    this.fillsInFlight = new client.Gauge({
      name: 'airlock_fills_in_flight', help: 'Blob fills from upstreams in progress', registers: r,
      collect() {
        this.set(fills());
      },
    });
    this.fills = new client.Counter({ name: 'airlock_fills_total', help: 'Blob fills finished, by outcome', labelNames: ['outcome'], registers: r });
    this.fillsNotStored = new client.Counter({ name: 'airlock_fills_not_stored_total', help: 'Blob fills served to their clients but not stored: no room under storage.maxSize', registers: r });
    this.auditWriteErrors = new client.Counter({ name: 'airlock_audit_write_errors_total', help: 'Audit log writes that failed (the events are in the log as errors, not in audit.file)', registers: r });
    this.digestMismatches = new client.Counter({ name: 'airlock_digest_mismatches_total', help: 'Upstream content that did not match its digest (never stored)', registers: r });
    this.storeBytes = new client.Gauge({ name: 'airlock_store_bytes', help: 'Bytes of blobs in the store (at the last scan or change)', registers: r });
    this.storeBlobs = new client.Gauge({ name: 'airlock_store_blobs', help: 'Blobs in the store (at the last scan or change)', registers: r });
    new client.Gauge({ name: 'airlock_store_read_only', help: '1 when the store is served read-only (storage.readOnly, or a read-only root): pulls only', registers: r }).set(opts.storeReadOnly ? 1 : 0);
    this.evictions = new client.Counter({ name: 'airlock_evictions_total', help: 'Images evicted to stay under storage.maxSize', registers: r });
    this.evictedBytes = new client.Counter({ name: 'airlock_evicted_bytes_total', help: 'Bytes of blobs removed by eviction', registers: r });
    this.prefetchImages = new client.Counter({ name: 'airlock_prefetch_images_total', help: 'Images handled by prefetch runs, by outcome', labelNames: ['outcome'], registers: r });
    this.policyDenials = new client.Counter({ name: 'airlock_policy_denials_total', help: 'Requests the upstream allow and deny lists denied (mode enforce) or would have denied (mode report)', labelNames: ['upstream', 'mode'], registers: r });

    const retired = () => this.#retired;
    const current = () => this.#upstreams;
    const upstreamTotal = (name: string, help: string, pick: (u: { requests: number; errors: number; bytes: number }) => number) =>
      new client.Counter({
        name, help, labelNames: ['upstream'], registers: r,
        collect() {
          this.reset();
          const totals = new Map<string, number>();
          for (const [n, t] of retired()) totals.set(n, pick(t));
          for (const u of current()) totals.set(u.name, (totals.get(u.name) ?? 0) + pick(u.stats));
          for (const [n, v] of totals) this.inc({ upstream: n }, v);
        },
      });
    upstreamTotal('airlock_upstream_requests_total', 'Requests sent to each upstream (retries included)', (t) => t.requests);
    upstreamTotal('airlock_upstream_errors_total', 'Failed exchanges with each upstream (connection errors, 5xx, token failures)', (t) => t.errors);
    upstreamTotal('airlock_upstream_bytes_total', 'Blob bytes received from each upstream', (t) => t.bytes);
    new client.Gauge({
      name: 'airlock_upstream_available', help: '1 unless the upstream\'s circuit breaker is open', labelNames: ['upstream'], registers: r,
      collect() {
        this.reset();
        for (const u of current()) this.set({ upstream: u.name }, u.available ? 1 : 0);
      },
    });
    // The upstream's own counts (ratelimit-remaining, ratelimit-limit) until its window resets;
    // absent before it sent them and after the window, when they are no longer known.
    const rateLimit = (name: string, help: string, pick: (u: MeteredUpstream) => number | undefined) =>
      new client.Gauge({
        name, help, labelNames: ['upstream'], registers: r,
        collect() {
          this.reset();
          for (const u of current()) {
            const v = pick(u);
            if (v !== undefined) this.set({ upstream: u.name }, v);
          }
        },
      });
    rateLimit('airlock_upstream_ratelimit_remaining', 'Requests left in the upstream\'s rate-limit window (its ratelimit-remaining header), until the window resets', (u) => u.rateLimitNow()?.remaining);
    rateLimit('airlock_upstream_ratelimit_limit', 'Requests the upstream allows per rate-limit window (its ratelimit-limit header), until the window resets', (u) => u.rateLimitNow()?.limit);
    rateLimit('airlock_upstream_ratelimit_reserve', 'upstreams.<host>.rateLimitReserve: under this many remaining, stored tags are served without revalidation', (u) => u.rateLimitReserve);
    this.watchUpstreams(upstreams);
  }

  /** Follows a new set of upstream clients (after a reload); the old ones' totals are kept. */
  watchUpstreams(upstreams: ReadonlyMap<string, MeteredUpstream>): void {
    for (const u of this.#upstreams) {
      const t = this.#retired.get(u.name) ?? { requests: 0, errors: 0, bytes: 0 };
      this.#retired.set(u.name, { requests: t.requests + u.stats.requests, errors: t.errors + u.stats.errors, bytes: t.bytes + u.stats.bytes });
    }
    this.#upstreams = [...upstreams.values()];
    for (const u of this.#upstreams) {
      u.onExchange = (status, seconds) => {
        this.upstreamExchanges.inc({ upstream: u.name, status: String(status) });
        this.upstreamLatency.observe({ upstream: u.name }, seconds);
      };
    }
  }

  /** Counts what this replica's fleet did (fills led and followed, takeovers, bytes from other replicas). */
  watchFleet(stats: { led: number; followed: number; takeovers: number; peerBytes: number; tagChecksShared: number }): void {
    const r = [this.collectors];
    new client.Counter({
      name: 'airlock_fleet_fills_total', help: 'Blob fills this replica led (from the upstream) or followed (from another replica)', labelNames: ['role'], registers: r,
      collect() {
        this.reset();
        this.inc({ role: 'led' }, stats.led);
        this.inc({ role: 'followed' }, stats.followed);
      },
    });
    const total = (name: string, help: string, pick: () => number) =>
      new client.Counter({ name, help, registers: r, collect() { this.reset(); this.inc(pick()); } });
    total('airlock_fleet_takeovers_total', 'Fill leases taken over from a replica that stopped renewing them', () => stats.takeovers);
    total('airlock_fleet_peer_bytes_total', 'Blob bytes received from other replicas', () => stats.peerBytes);
    total('airlock_fleet_tag_checks_shared_total', 'Tag revalidations left to another replica (once per tag per TTL window for the fleet)', () => stats.tagChecksShared);
  }

  /** storage.maxSize: the ceiling airlock_store_bytes is kept under (absent without one). */
  storeCeiling(bytes: number): void {
    this.#storeMaxBytes ??= new client.Gauge({ name: 'airlock_store_max_bytes', help: 'The store\'s ceiling, storage.maxSize (absent without one)', registers: [this.collectors] });
    this.#storeMaxBytes.set(bytes);
  }

  /** When the certificate served on the listen port (tls.cert) expires, in Unix seconds (absent without tls). */
  tlsCertExpires(unixSeconds: number): void {
    this.#tlsCertExpiry ??= new client.Gauge({ name: 'airlock_tls_cert_expiry_timestamp_seconds', help: 'When the certificate served on the listen port (tls.cert) expires, as a Unix time (absent without tls)', registers: [this.collectors] });
    this.#tlsCertExpiry.set(unixSeconds);
  }

  /** Where the fills-in-flight gauge reads its value when scraped. */
  countFillsWith(count: () => number): void {
    this.#fillsInFlight = count;
  }

  contentType(): string {
    return this.collectors.contentType;
  }

  text(): Promise<string> {
    return this.collectors.metrics();
  }
}
