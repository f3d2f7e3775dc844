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
 * from a broken upstream connection).
 *
 * Tag revalidation: one replica per tag per TTL window creates the window's marker and asks
 * the upstream; the others wait for its result in the store.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from '../logging/logger.js';
import type { Digest } from '../oci/digest.js';
import { UpstreamUnavailableError } from '../oci/errors.js';
import { leaseName, parseLease, type Lease } from '../storage/fleet-lease.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { PeerRefusedError, type PeerClient } from '../upstream/peer-client.js';
import type { FillControl, FillSource } from './blob-fill.js';

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
    private readonly store: RegistryStore,
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
    const text = await this.store.fleetRead(leaseName(d)).catch(() => undefined);
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
    await this.store.fleetCreate(name, JSON.stringify({ replica: this.id, state: 'done' })).catch(() => undefined);
  }

  /**
   * Claims the revalidation of a tag for the current TTL window. True: this replica asks the
   * upstream now (and calls the returned done when finished). False: another replica did or is
   * doing it; this one waited (a few seconds at most) for it and reads the tag from the store.
   */
  async claimTagCheck(key: string, ttl: number): Promise<{ mine: true; done(): Promise<void> } | { mine: false }> {
    const { base, window, name } = this.#tagMarker(key, ttl);
    if (await this.store.fleetCreate(name, JSON.stringify({ replica: this.id, state: 'checking' }))) {
      return {
        mine: true,
        done: async () => {
          await this.store.fleetWrite(name, JSON.stringify({ replica: this.id, state: 'done' })).catch(() => undefined);
          await this.store.fleetDelete(`${base}-${window - 1}`).catch(() => undefined);
        },
      };
    }
    this.stats.tagChecksShared++;
    for (let i = 0; i < 50; i++) {
      const body = await this.store.fleetRead(name).catch(() => undefined);
      if (!body || body.includes('"done"')) break;
      await sleep(100);
    }
    return { mine: false };
  }
}

/** Where one fill's bytes come from: the upstream as the lease holder, else the lease holder. */
class FleetFillSource implements FillSource {
  #owner = false;
  #renew: NodeJS.Timeout | undefined;
  /** Offset at which the current stream started, while reading from a peer or the bucket. */
  #peerFrom: number | undefined;
  #peerIsReplica = false;
  #counted = false;
  #triedOnce = false;
  /** Bytes of this fill that came from another replica or the bucket, not the upstream. */
  otherBytes = 0;

  constructor(
    private readonly fleet: Fleet,
    private readonly store: RegistryStore,
    private readonly peers: PeerClient,
    private readonly digest: Digest,
    private readonly upstream: FillSource,
    private readonly log: Logger,
  ) {}

  #closePeerSegment(offset: number): void {
    if (this.#peerFrom === undefined) return;
    const n = Math.max(0, offset - this.#peerFrom);
    this.otherBytes += n;
    if (this.#peerIsReplica) this.fleet.stats.peerBytes += n;
    this.#peerFrom = undefined;
  }

  async open(offset: number, ctl: FillControl): ReturnType<FillSource['open']> {
    this.#closePeerSegment(offset);
    if (this.#owner) return this.upstream.open(offset, ctl);
    const d = this.digest;
    const ttl = this.fleet.opts.leaseTTL;
    // Long enough for a dead filler's lease to expire and be taken over; pushed back whenever
    // the holder answers (it may fill a blob of unknown size, which it cannot stream).
    let deadline = Date.now() + 2 * ttl + 10_000;
    // The caller looked for the blob just before the first attempt.
    let lookedAlready = offset === 0 && !this.#triedOnce;
    this.#triedOnce = true;
    for (;;) {
      if (!lookedAlready) {
        const stored = await this.#fromBucket(offset);
        if (stored) return stored;
      }
      lookedAlready = false;
      if (await this.store.fleetCreate(leaseName(d), this.fleet.newLease())) {
        // The previous holder may have committed the blob and released its lease after we
        // looked: then the lease is ours, but the blob must not be fetched a second time.
        const stored = await this.#fromBucket(offset);
        if (stored) {
          await this.store.fleetDelete(leaseName(d)).catch(() => undefined);
          return stored;
        }
        this.#lead(ctl);
        return this.upstream.open(offset, ctl);
      }
      const lease = await this.fleet.readLease(d);
      if (!lease) {
        // Released between our create and our read: the blob is in place, or about to be raced for.
        if (Date.now() > deadline) throw new UpstreamUnavailableError(`could not take or follow the fill of ${d.toString()}`);
        await sleep(20);
        continue;
      }
      if (lease.replica === this.fleet.id) {
        // Ours: the create succeeded but its answer was lost (the SDK's retry then met our own lease).
        this.#lead(ctl);
        return this.upstream.open(offset, ctl);
      }
      const stale = lease.expires < Date.now() || (lease.url === this.fleet.opts.advertise && lease.replica !== this.fleet.id);
      if (stale) {
        // Nobody renews it: the filler died (or this replica restarted). Remove it, unless another
        // replica replaced it meanwhile, and race for it.
        const again = await this.fleet.readLease(d);
        if (again?.text === lease.text) {
          this.log.warn({ digest: d.toString(), holder: lease.url }, 'fill lease expired; taking over');
          this.fleet.stats.takeovers++;
          await this.store.fleetDelete(leaseName(d)).catch(() => undefined);
        }
        continue;
      }
      try {
        const r = await this.peers.open(lease.url, d.toString(), offset);
        if (r) {
          if (!this.#counted) {
            this.#counted = true;
            this.fleet.stats.followed++;
          }
          this.#peerFrom = r.start;
          this.#peerIsReplica = true;
          return r;
        }
        deadline = Date.now() + 2 * ttl + 10_000;
      } catch (e) {
        if (e instanceof PeerRefusedError) this.log.warn({ peer: lease.url, err: e.message }, 'another replica refused this one (fleet.secret differs?)');
        else this.log.debug({ digest: d.toString(), peer: lease.url, err: (e as Error).message }, 'replica holding the fill did not answer');
      }
      if (Date.now() > deadline) throw new UpstreamUnavailableError(`the replica filling ${d.toString()} (${lease.url}) cannot be reached and its lease is still live`);
      await sleep(Math.min(500, Math.max(50, ttl / 10)));
    }
  }

  /** The stored blob from `offset`, when it is in the bucket. */
  async #fromBucket(offset: number): Promise<Awaited<ReturnType<FillSource['open']>> | undefined> {
    const info = await this.store.statBlob(this.digest);
    if (!info || offset >= info.size) return undefined;
    const body = await this.store.openBlob(this.digest, { start: offset, end: info.size - 1 });
    if (!body) return undefined;
    this.#peerFrom = offset;
    this.#peerIsReplica = false;
    return { total: info.size, start: offset, body };
  }

  #lead(ctl: FillControl): void {
    this.#owner = true;
    this.fleet.stats.led++;
    ctl.claim();
    const every = Math.max(200, Math.floor(this.fleet.opts.leaseTTL / 3));
    let renewing = false;
    this.#renew = setInterval(() => {
      if (renewing) return;
      renewing = true;
      void this.#renewOnce()
        .catch((e: unknown) => this.log.warn({ digest: this.digest.toString(), err: (e as Error).message }, 'could not renew a fill lease'))
        .finally(() => (renewing = false));
    }, every);
    this.#renew.unref();
  }

  /** Renews the lease while it is still ours (a replica that took it over keeps it). */
  async #renewOnce(): Promise<void> {
    const now = await this.fleet.readLease(this.digest);
    if (!this.#renew) return;
    if (now && now.replica !== this.fleet.id) {
      this.log.warn({ digest: this.digest.toString(), holder: now.url }, 'another replica took this fill\'s lease over; no longer renewing it');
      clearInterval(this.#renew);
      this.#renew = undefined;
      return;
    }
    await this.store.fleetWrite(leaseName(this.digest), this.fleet.newLease());
  }

  /**
   * Whether this replica publishes the blob. The lease holder does; a follower waits for the
   * holder's commit and publishes only when the holder went away without one (it has every
   * verified byte, so the fleet need not fetch them again).
   */
  async shouldCommit(received: number): Promise<boolean> {
    this.#closePeerSegment(received);
    if (this.#owner) return true;
    const deadline = Date.now() + this.fleet.opts.leaseTTL + 5_000;
    while (Date.now() < deadline) {
      if (await this.store.statBlob(this.digest)) return false;
      const lease = await this.fleet.readLease(this.digest);
      if (!lease || lease.expires < Date.now()) {
        // Released without a blob (or dead): look once more, then publish.
        await sleep(200);
        return !(await this.store.statBlob(this.digest));
      }
      await sleep(100);
    }
    return true;
  }

  async settled(): Promise<void> {
    clearInterval(this.#renew);
    this.#renew = undefined;
    if (this.#owner) {
      this.#owner = false;
      const now = await this.fleet.readLease(this.digest);
      if (now && now.replica !== this.fleet.id) return;
      await this.store.fleetDelete(leaseName(this.digest)).catch((e: unknown) => {
        this.log.warn({ digest: this.digest.toString(), err: (e as Error).message }, 'could not remove a fill lease (it expires by itself)');
      });
    }
  }
}
