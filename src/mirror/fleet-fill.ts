/**
 * Both ends of a fill that crosses replicas of the fleet (fleet.ts), GET /fills/<digest> on the
 * fleet port: FleetFillSource is a fill that reads the blob from the replica holding its lease
 * (or, holding the lease itself, from the upstream); servePeerFill is what this replica serves the
 * others: its fill of the blob as it grows, or the stored blob.
 */
import { Readable } from 'node:stream';
import type { Logger } from '../logging/logger.js';
import type { Digest } from '../oci/digest.js';
import { UpstreamUnavailableError } from '../oci/errors.js';
import { leaseName } from '../storage/fleet-lease.js';
import type { Store } from '../storage/store.js';
import { PeerRefusedError, type PeerClient } from '../upstream/peer-client.js';
import type { FillControl, FillSource } from './blob-fill.js';
import type { BlobService } from './blob-service.js';
import type { Fleet } from './fleet.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A blob for another replica of the fleet: this replica's fill of it as it grows, from
 * `offset`, or the stored blob; undefined when it has neither.
 */
export async function servePeerFill(blobs: BlobService, digest: Digest, offset: number): Promise<{ size: number; body: Readable } | undefined> {
  const fill = blobs.runningFill(digest);
  if (fill) {
    try {
      await fill.ready;
    } catch {
      return undefined;
    }
    if (fill.size !== undefined && offset <= fill.size) return { size: fill.size, body: fill.follow(offset) };
    return undefined;
  }
  const info = await blobs.store.blobs.stat(digest);
  if (!info || offset > info.size) return undefined;
  const body = offset < info.size ? await blobs.store.blobs.open(digest, { start: offset, end: info.size - 1 }) : Readable.from([]);
  return body ? { size: info.size, body: blobs.reading(digest, body) } : undefined;
}

/** Where one fill's bytes come from: the upstream as the lease holder, else the lease holder. */
export class FleetFillSource implements FillSource {
  #owner = false;
  #renew: NodeJS.Timeout | undefined;
  /** The renewal in flight, if any. */
  #renewing: Promise<void> | undefined;
  /** Offset at which the current stream started, while reading from a peer or the bucket. */
  #peerFrom: number | undefined;
  #peerIsReplica = false;
  #counted = false;
  #triedOnce = false;
  /** Bytes of this fill that came from another replica or the bucket, not the upstream. */
  otherBytes = 0;

  constructor(
    private readonly fleet: Fleet,
    private readonly store: Store,
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
      if (await this.store.fleet.create(leaseName(d), this.fleet.newLease())) {
        // The previous holder may have committed the blob and released its lease after we
        // looked: then the lease is ours, but the blob must not be fetched a second time.
        const stored = await this.#fromBucket(offset);
        if (stored) {
          await this.store.fleet.delete(leaseName(d)).catch(() => undefined);
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
          await this.store.fleet.delete(leaseName(d)).catch(() => undefined);
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
    const info = await this.store.blobs.stat(this.digest);
    if (!info || offset >= info.size) return undefined;
    const body = await this.store.blobs.open(this.digest, { start: offset, end: info.size - 1 });
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
    this.#renew = setInterval(() => {
      if (this.#renewing) return;
      this.#renewing = this.#renewOnce()
        .catch((e: unknown) => this.log.warn({ digest: this.digest.toString(), err: (e as Error).message }, 'could not renew a fill lease'))
        .finally(() => (this.#renewing = undefined));
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
    await this.store.fleet.write(leaseName(this.digest), this.fleet.newLease());
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
      if (await this.store.blobs.stat(this.digest)) return false;
      const lease = await this.fleet.readLease(this.digest);
      if (!lease || lease.expires < Date.now()) {
        // Released without a blob (or dead): look once more, then publish.
        await sleep(200);
        return !(await this.store.blobs.stat(this.digest));
      }
      await sleep(100);
    }
    return true;
  }

  async settled(): Promise<void> {
    clearInterval(this.#renew);
    this.#renew = undefined;
    // A renewal already past its check would write the lease again after the delete below.
    await this.#renewing;
    if (this.#owner) {
      this.#owner = false;
      const now = await this.fleet.readLease(this.digest);
      if (now && now.replica !== this.fleet.id) return;
      await this.store.fleet.delete(leaseName(this.digest)).catch((e: unknown) => {
        this.log.warn({ digest: this.digest.toString(), err: (e as Error).message }, 'could not remove a fill lease (it expires by itself)');
      });
    }
  }
}
