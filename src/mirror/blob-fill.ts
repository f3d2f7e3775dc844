/**
 * A blob being fetched from an upstream into the store, and the clients following it.
 *
 * One fill per digest, whatever the number of clients (single flight). The fill writes the
 * upstream's bytes into a staged (temp) object while hashing them. Clients that keep up get the
 * newest bytes from memory (the upstream's chunks, shared); clients further behind read the
 * staged object as it grows. The fill keeps the pace of its fastest client (PACE_AHEAD), but a
 * client that stops reading holds it up only briefly, so a slow client never stalls the fill
 * or the others, and a client that disconnects does not abort it.
 *
 * The last byte is only released after the digest and length are verified and every byte is
 * written through (the commit, fsync and rename, follows): a client of a corrupt transfer sees
 * a broken connection, never a clean end with wrong bytes. A connection that breaks mid-blob is
 * resumed with a Range request from the received offset (restarting when the upstream ignores
 * the range), keeping the hash running.
 *
 * Under storage.maxSize the fill asks for room (fill-room.ts) as soon as its size is known and
 * waits for it before the commit: the store's blob bytes never cross the ceiling. With no room
 * (nothing evictable left), the clients still get every byte, from memory and from the staged
 * object, which is kept until the last of them is done; the blob is not stored.
 *
 * This file is the tee, verify and commit core with its resumes; the clients' streams are
 * fill-follower.ts, the in-memory window fill-window.ts, the pace fill-pace.ts.
 */
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { received as youngBytes } from '../runtime/young-gc.js';
import type { Logger } from '../logging/logger.js';
import { createHasher, type Digest } from '../oci/digest.js';
import { DigestMismatchError, MirrorError, UpstreamBadResponseError, UpstreamUnavailableError } from '../oci/errors.js';
import type { PositionalReader, StagedWrite } from '../storage/driver.js';
import type { Store } from '../storage/store.js';
import { FillFollower } from './fill-follower.js';
import { FillPace } from './fill-pace.js';
import { FillRoom, type StoreSpace } from './fill-room.js';
import { FillWindow } from './fill-window.js';

export type { SpaceReservation, StoreSpace } from './fill-room.js';

export interface FillSource {
  /** Opens the upstream body at `offset`: `start` is where the body really starts (0 when the range was ignored). */
  open(offset: number, ctl: FillControl): Promise<{ total?: number; start: number; body: Readable }>;
  /**
   * Whether this fill publishes the blob once verified (default yes). No: another replica
   * publishes it (fleet.ts); the staged copy is then discarded and the blob only linked.
   */
  shouldCommit?(received: number): Promise<boolean>;
  /** The fill settled, either way (a lease is released here). */
  settled?(): Promise<void>;
}

/** What a source may ask of its fill. */
export interface FillControl {
  /** This fill will publish the blob: the staged write may start uploading into its final key. */
  claim(): void;
}

export interface FillOptions {
  /** How many times a broken transfer is resumed before the fill fails. */
  maxResumes: number;
  log: Logger;
  /** Room under storage.maxSize (evict.ts); without it every verified fill is committed. */
  space?: StoreSpace;
  /** Called once with the outcome, for metrics: `not_stored` was served but found no room. */
  onSettled?: (outcome: 'done' | 'failed' | 'not_stored', bytes: number, error?: Error) => void;
}

/** A fill that found no room: how long its staged object outlives its last client, for one about to join. */
const NOT_STORED_LINGER_MS = 1_000;

export class BlobFill extends EventEmitter {
  state: 'running' | 'done' | 'failed' = 'running';
  /** Total size, known once the upstream's headers arrived. */
  size: number | undefined;
  error: Error | undefined;
  /** Repositories to link the blob into when it is committed. */
  readonly repositories = new Set<string>();
  /** When it began (epoch ms), for the console's list of fills. */
  readonly startedAt = Date.now();
  /** Once done: false when there was no room under storage.maxSize (served, not stored). */
  stored: boolean | undefined;
  /** Resolves when the upstream answered with headers (size known), rejects if it failed first. */
  readonly ready: Promise<void>;
  /** Resolves when the blob is committed (or found no room: `stored` false); rejects with the failure. */
  readonly done: Promise<void>;
  #staged: StagedWrite | undefined;
  #body: Readable | undefined;
  #aborted = false;
  #received = 0;
  /** The bytes hash to the digest and are all written through: clients may have the last byte. */
  #verified = false;
  /** The newest received chunks, for the clients that keep up. */
  readonly #window = new FillWindow();
  /** The clients following this fill now, and the pace they set it. */
  readonly #pace = new FillPace();
  /** Room under storage.maxSize, asked for as soon as the size is known. */
  readonly #room: FillRoom;
  /** A fill not stored: removes the staged object once no client has followed it for a while. */
  #linger: NodeJS.Timeout | undefined;
  /** That removal, once started (shutdown waits for it). */
  #discarded: Promise<void> | undefined;

  constructor(
    readonly digest: Digest,
    private readonly store: Store,
    private readonly source: FillSource,
    private readonly opts: FillOptions,
  ) {
    super();
    this.setMaxListeners(0);
    this.#room = new FillRoom(opts.space, digest, opts.log);
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    this.done = this.#run(readyResolve).catch((e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      readyReject(err);
      throw err;
    });
    // Nobody may be waiting on these when a fill fails; the failure is reported through them
    // to those who are, and logged here.
    this.ready.catch(() => undefined);
    this.done.catch(() => undefined);
  }

  /** Bytes a follower may read now: written through, and never the last byte before verification. */
  get readable(): number {
    return this.#releasable(this.#staged?.bytesReadable ?? 0);
  }

  /** Bytes a follower may take from memory now: received, never the last byte before verification. */
  get received(): number {
    return this.#releasable(this.#received);
  }

  /** Of `bytes` available, how many may go out: all once verified, else never the last byte. */
  #releasable(bytes: number): number {
    if (this.state === 'done' || this.#verified) return this.size ?? 0;
    return Math.max(0, this.size === undefined ? bytes - 1 : Math.min(bytes, this.size - 1));
  }

  /** Stops the fill (shutdown): the temp object is removed, followers see an error. */
  abort(reason = 'the fill was stopped'): void {
    if (this.state !== 'running') return;
    this.#aborted = true;
    this.#pace.stop();
    this.#body?.destroy(new UpstreamUnavailableError(reason));
  }

  async #run(readyResolve: () => void): Promise<void> {
    const staged = await this.store.blobs.stage();
    this.#staged = staged;
    const hash = createHasher(this.digest.algorithm);
    const ctl: FillControl = { claim: () => this.store.blobs.target(staged, this.digest) };
    let resumes = 0;
    let headersSeen = false;
    try {
      for (;;) {
        if (this.#aborted) throw new UpstreamUnavailableError('the fill was stopped');
        let skip = 0;
        try {
          const { total, start, body } = await this.source.open(this.#received, ctl);
          this.#body = body;
          if (!headersSeen) {
            headersSeen = true;
            this.size = total;
            // Eviction, if any is needed, runs while the bytes arrive, not after them.
            if (total !== undefined) this.#room.ask(total);
            readyResolve();
          } else if (total !== undefined && this.size !== undefined && total !== this.size) {
            body.destroy();
            throw new UpstreamBadResponseError(`upstream changed the size of ${this.digest.toString()} between attempts`);
          }
          skip = this.#received - start;
          for await (const c of body) {
            let chunk = c as Buffer;
            if (skip > 0) {
              // The upstream ignored our Range: drop what we already have.
              if (chunk.length <= skip) {
                skip -= chunk.length;
                continue;
              }
              chunk = chunk.subarray(skip);
              skip = 0;
            }
            if (this.size !== undefined && this.#received + chunk.length > this.size) {
              throw new DigestMismatchError(this.digest.toString(), `more than ${this.size} bytes`);
            }
            hash.update(chunk);
            youngBytes(chunk.length);
            this.#window.push(chunk);
            this.#received += chunk.length;
            this.emit('progress');
            if (this.#pace.followed) await this.#pace.wait(this.#received);
            try {
              await staged.write(chunk);
            } catch (e) {
              // The store could not take the bytes (disk full, I/O error): resuming the
              // transfer cannot help.
              throw new StoreWriteError(e);
            }
          }
          this.#body = undefined;
          if (this.size === undefined || this.#received === this.size) break;
          throw new UpstreamUnavailableError(`upstream body ended after ${this.#received} of ${this.size} bytes`);
        } catch (e) {
          this.#body = undefined;
          const fatal = this.#aborted || e instanceof StoreWriteError || (e instanceof MirrorError && !(e instanceof UpstreamUnavailableError)) || !headersSeen;
          if (fatal || resumes >= this.opts.maxResumes) throw e;
          resumes++;
          this.opts.log.warn({ digest: this.digest.toString(), offset: this.#received, attempt: resumes, err: (e as Error).message }, 'upstream transfer broke; resuming');
        }
      }
      const actual = `${this.digest.algorithm}:${hash.digest('hex')}`;
      if (actual !== this.digest.toString()) throw new DigestMismatchError(this.digest.toString(), actual);
      // Clients get the last byte once the content is verified and written through; the fsync
      // and rename that make it durable and visible in the store need not hold them up.
      await staged.flush();
      this.size = this.#received;
      this.#verified = true;
      this.emit('progress');
      if ((await this.source.shouldCommit?.(this.#received)) ?? true) {
        const room = await this.#room.toCommit(this.#received);
        if (!room) {
          this.#notStored();
          return;
        }
        try {
          await this.store.blobs.commit(staged, this.digest);
        } catch (e) {
          room.settle(false);
          throw e;
        }
        room.settle(true);
      } else {
        // Another replica publishes it (fleet).
        this.#room.giveBack();
        await staged.abort();
      }
      this.stored = true;
      for (const repo of this.repositories) await this.store.links.linkBlob(repo, this.digest);
      this.state = 'done';
      this.emit('progress');
      this.opts.onSettled?.('done', this.#received);
    } catch (e) {
      this.#room.giveBack();
      await staged.abort();
      this.state = 'failed';
      this.error = e instanceof Error ? e : new Error(String(e));
      if (e instanceof DigestMismatchError) this.opts.log.error({ digest: this.digest.toString(), err: e.message }, 'upstream sent bytes that do not match the digest; discarded');
      else if (e instanceof StoreWriteError || ['ENOSPC', 'EDQUOT', 'EIO'].includes(String((e as NodeJS.ErrnoException).code))) {
        this.opts.log.error({ digest: this.digest.toString(), err: this.error.message, code: (e as NodeJS.ErrnoException).code }, 'blob fill failed: the store could not take the bytes');
      }
      else this.opts.log.warn({ digest: this.digest.toString(), err: this.error.message }, 'blob fill failed');
      this.emit('progress');
      this.opts.onSettled?.('failed', this.#received, this.error);
      throw this.error;
    } finally {
      await this.source.settled?.().catch(() => undefined);
    }
  }

  /** No room under storage.maxSize: the clients get every byte, the store none. */
  #notStored(): void {
    this.stored = false;
    this.state = 'done';
    this.opts.log.warn(
      { digest: this.digest.toString(), sizeBytes: this.#received },
      'blob served but not stored: no room under storage.maxSize (larger than it, or the rest is pinned, local or in use); the next pull fetches it again',
    );
    this.emit('progress');
    this.opts.onSettled?.('not_stored', this.#received);
    this.#releaseWhenIdle();
  }

  /**
   * A fill not stored keeps its staged object while clients follow it (they may be far behind
   * the in-memory window) and a little longer, for a client that joined but has not opened its
   * stream yet; then it is removed. A reader opened before keeps its descriptor to the end.
   */
  #releaseWhenIdle(): void {
    if (this.stored !== false || !this.#staged || this.#pace.followed || this.#linger) return;
    this.#linger = setTimeout(() => {
      this.#linger = undefined;
      // Those who joined meanwhile call this again when they leave.
      if (!this.#pace.followed) void this.discard();
    }, NOT_STORED_LINGER_MS);
    this.#linger.unref();
  }

  /** Removes the staged copy of a fill that was not stored (at once: shutdown); 'released' follows. */
  discard(): Promise<void> {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    const staged = this.stored === false ? this.#staged : undefined;
    if (staged) {
      this.#staged = undefined;
      this.#discarded = staged
        .abort()
        .catch((e: unknown) => this.opts.log.warn({ digest: this.digest.toString(), err: (e as Error).message }, 'could not remove the staged copy of a blob not stored'))
        .finally(() => this.emit('released'));
    }
    return this.#discarded ?? Promise.resolve();
  }

  /** A client's stream ended or was destroyed. */
  detach(f: FillFollower): void {
    this.#pace.detach(f);
    this.#releaseWhenIdle();
  }

  /** A stream of the blob from `start` (inclusive) to `end` (inclusive, default: the end). */
  follow(start = 0, end?: number): Readable {
    return new FillFollower(this, this.#pace, this.#window, this.store, start, end);
  }

  /** For the follower: a reader on the staged object, or undefined once it moved or failed. */
  openStagedReader(): Promise<PositionalReader | undefined> {
    return this.#staged ? this.#staged.openReader() : Promise.resolve(undefined);
  }
}

/** Writing a fill to the store failed (ENOSPC, EIO, …): fatal for the fill, logged as an error. */
export class StoreWriteError extends Error {
  readonly code?: string;
  constructor(cause: unknown) {
    super(`cannot write to the store: ${(cause as Error).message}`, { cause });
    this.name = 'StoreWriteError';
    this.code = (cause as NodeJS.ErrnoException).code;
  }
}
