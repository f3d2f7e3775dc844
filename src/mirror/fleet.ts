/**
 * Replicas on one bucket, one upstream fetch per blob for the whole fleet.
 *
 * The bucket is the only shared state. A replica that misses a blob tries to create its lease
 * object (`.airlock/fleet/leases/<alg>-<hex>`, If-None-Match: *). The one that creates it fills
 * from the upstream, renews the lease every third of its TTL and removes it once the blob is
 * committed. Every other replica reads the lease, which names the filler's fleet URL, and
 * streams the blob from there (GET /fills/<digest>, served from the fill as it grows) instead of
 * going upstream. When the filler dies, its stream breaks and its lease stops being renewed; a
 * follower resumes from its received offset once the lease has expired and it took it over, by
 * a Range request to the upstream, keeping its hash running (blob-fill.ts resumes the same way
 * from a broken upstream connection). Both ends of GET /fills/<digest> are fleet-fill.ts.
 *
 * Tag revalidation: one replica per tag per TTL window creates the window's marker and asks
 * the upstream; the others wait for its result in the store.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from '../logging/logger.js';
import type { Digest } from '../oci/digest.js';
import { leaseName, parseLease, type Lease } from '../storage/fleet-lease.js';
import type { Store } from '../storage/store.js';
import type { PeerClient } from '../upstream/peer-client.js';
import type { FillSource } from './blob-fill.js';
import { FleetFillSource } from './fleet-fill.js';

export interface FleetOptions {
  /** The URL other replicas reach this one's fleet port by. */
  advertise: string;
  /** A lease not renewed for this long is taken over. */
  leaseTTL: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface FleetStats {
  /** Fills this replica led (fetched from the upstream). */
  led: number;
  /** Fills this replica followed from another replica. */
  followed: number;
  /** Leases taken over from a replica that stopped renewing them. */
  takeovers: number;
  /** Blob bytes received from other replicas. */
  peerBytes: number;
  /** Tag revalidations left to another replica. */
  tagChecksShared: number;
}

export class Fleet {
  /** This process, in leases (a restarted replica does not mistake its old leases for live ones). */
  readonly id = randomUUID();
  readonly stats: FleetStats = { led: 0, followed: 0, takeovers: 0, peerBytes: 0, tagChecksShared: 0 };

  constructor(
    private readonly store: Store,
    private readonly peers: PeerClient,
    readonly opts: FleetOptions,
    private readonly log: Logger,
  ) {}

  /** A fill source that goes to `upstream` only while this replica holds the blob's lease. */
  source(digest: Digest, upstream: FillSource): FillSource & { readonly otherBytes: number } {
    return new FleetFillSource(this, this.store, this.peers, digest, upstream, this.log);
  }

  newLease(): string {
    return JSON.stringify({ replica: this.id, url: this.opts.advertise, expires: Date.now() + this.opts.leaseTTL } satisfies Lease);
  }

  /** The lease, with its exact text (to tell whether it changed between two reads). */
  async readLease(d: Digest): Promise<(Lease & { text: string }) | undefined> {
    const text = await this.store.fleet.read(leaseName(d)).catch(() => undefined);
    const lease = parseLease(text);
    return lease && text !== undefined ? { ...lease, text } : undefined;
  }

  #tagMarker(key: string, ttl: number): { base: string; window: number; name: string } {
    const window = Math.floor(Date.now() / Math.max(1000, ttl));
    const base = `tags/${createHash('sha256').update(key).digest('hex')}`;
    return { base, window, name: `${base}-${window}` };
  }

  /** Records that this replica just fetched a tag from the upstream: the others trust it for the window. */
  async markTagChecked(key: string, ttl: number): Promise<void> {
    const { name } = this.#tagMarker(key, ttl);
    await this.store.fleet.create(name, JSON.stringify({ replica: this.id, state: 'done' })).catch(() => undefined);
  }

  /**
   * Claims the revalidation of a tag for the current TTL window. True: this replica asks the
   * upstream now (and calls the returned done when finished). False: another replica did or is
   * doing it; this one waited (a few seconds at most) for it and reads the tag from the store.
   */
  async claimTagCheck(key: string, ttl: number): Promise<{ mine: true; done(): Promise<void> } | { mine: false }> {
    const { base, window, name } = this.#tagMarker(key, ttl);
    if (await this.store.fleet.create(name, JSON.stringify({ replica: this.id, state: 'checking' }))) {
      return {
        mine: true,
        done: async () => {
          await this.store.fleet.write(name, JSON.stringify({ replica: this.id, state: 'done' })).catch(() => undefined);
          await this.store.fleet.delete(`${base}-${window - 1}`).catch(() => undefined);
        },
      };
    }
    this.stats.tagChecksShared++;
    for (let i = 0; i < 50; i++) {
      const body = await this.store.fleet.read(name).catch(() => undefined);
      if (!body || body.includes('"done"')) break;
      await sleep(100);
    }
    return { mine: false };
  }
}
