/**
 * A blob being fetched from an upstream into the store, and the clients following it.
 *
 * One fill per digest, whatever the number of clients (single flight). The fill writes the
 * upstream's bytes into a staged (temp) object while hashing them; every client, the first one
 * included, reads that object as it grows, so a slow client never stalls the fill or the others
 * and a client that disconnects does not abort it. The last byte is only released after the
 * digest and length are verified and every byte is written through (the commit, fsync and rename,
 * follows): a client of a corrupt transfer sees a broken connection, never a clean end with wrong
 * bytes. A connection that breaks mid-blob
 * is resumed with a Range request from the received offset (restarting when the upstream ignores
 * the range), keeping the hash running.
 */
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import type { Logger } from '../logging/logger.js';
import { createHasher, type Digest } from '../oci/digest.js';
import { DigestMismatchError, MirrorError, UpstreamBadResponseError, UpstreamUnavailableError } from '../oci/errors.js';
import type { StagedReader, StagedWrite } from '../storage/driver.js';
import type { RegistryStore } from '../storage/registry-store.js';

export interface FillSource {
  /** Opens the upstream body at `offset`: `start` is where the body really starts (0 when the range was ignored). */
  open(offset: number): Promise<{ total?: number; start: number; body: Readable }>;
}

export interface FillOptions {
  /** How many times a broken transfer is resumed before the fill fails. */
  maxResumes: number;
  log: Logger;
  /** Called once with the outcome, for metrics. */
  onSettled?: (outcome: 'done' | 'failed', bytes: number, error?: Error) => void;
}

/**
 * A follower's read size. Smaller than the 1 MiB of local reads: with many clients following
 * many fills, each holds up to two of these, and RSS matters more than the last few % here.
 */
const READ_CHUNK = 512 << 10;

export class BlobFill extends EventEmitter {
  state: 'running' | 'done' | 'failed' = 'running';
  /** Total size, known once the upstream's headers arrived. */
  size: number | undefined;
  error: Error | undefined;
  /** Repositories to link the blob into when it is committed. */
  readonly repositories = new Set<string>();
  /** Resolves when the upstream answered with headers (size known), rejects if it failed first. */
  readonly ready: Promise<void>;
  /** Resolves when the blob is committed; rejects with the failure. */
  readonly done: Promise<void>;
  #staged: StagedWrite | undefined;
  #body: Readable | undefined;
  #aborted = false;
  #received = 0;
  /** The bytes hash to the digest and are all written through: clients may have the last byte. */
  #verified = false;

  constructor(
    readonly digest: Digest,
    private readonly store: RegistryStore,
    private readonly source: FillSource,
    private readonly opts: FillOptions,
  ) {
    super();
    this.setMaxListeners(0);
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
    if (this.state === 'done' || this.#verified) return this.size ?? 0;
    const flushed = this.#staged?.bytesReadable ?? 0;
    return Math.max(0, this.size === undefined ? flushed - 1 : Math.min(flushed, this.size - 1));
  }

  /** Stops the fill (shutdown): the temp object is removed, followers see an error. */
  abort(reason = 'the fill was stopped'): void {
    if (this.state !== 'running') return;
    this.#aborted = true;
    this.#body?.destroy(new UpstreamUnavailableError(reason));
  }

  async #run(readyResolve: () => void): Promise<void> {
    const staged = await this.store.stage();
    this.#staged = staged;
    const hash = createHasher(this.digest.algorithm);
    let resumes = 0;
    let headersSeen = false;
    try {
      for (;;) {
        if (this.#aborted) throw new UpstreamUnavailableError('the fill was stopped');
        let skip = 0;
        try {
          const { total, start, body } = await this.source.open(this.#received);
          this.#body = body;
          if (!headersSeen) {
            headersSeen = true;
            this.size = total;
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
            const before = staged.bytesReadable;
            try {
              await staged.write(chunk);
            } catch (e) {
              // The store could not take the bytes (disk full, I/O error): resuming the
              // transfer cannot help.
              throw new StoreWriteError(e);
            }
            this.#received += chunk.length;
            if (staged.bytesReadable !== before) this.emit('progress');
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
      await this.store.commitBlob(staged, this.digest);
      for (const repo of this.repositories) await this.store.linkBlob(repo, this.digest);
      this.state = 'done';
      this.emit('progress');
      this.opts.onSettled?.('done', this.#received);
    } catch (e) {
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
    }
  }

  /** A stream of the blob from `start` (inclusive) to `end` (inclusive, default: the end). */
  follow(start = 0, end?: number): Readable {
    return new FillFollower(this, this.store, start, end);
  }

  /** For the follower: a reader on the staged object, or undefined once it moved or failed. */
  openStagedReader(): Promise<StagedReader | undefined> {
    return this.#staged ? this.#staged.openReader() : Promise.resolve(undefined);
  }
}

class FillFollower extends Readable {
  #pos: number;
  #reader: StagedReader | undefined;
  #final: Readable | undefined;
  #opened = false;
  #pumping = false;

  constructor(private readonly fill: BlobFill, private readonly store: RegistryStore, start: number, private readonly end?: number) {
    super({ highWaterMark: READ_CHUNK });
    this.#pos = start;
  }

  override _read(): void {
    if (this.#final) {
      this.#final.resume();
      return;
    }
    // One pump at a time: push() may ask for more while a read is still in flight.
    if (this.#pumping) return;
    this.#pumping = true;
    this.#pump().then(
      () => {
        this.#pumping = false;
      },
      (e: unknown) => {
        this.#pumping = false;
        this.destroy(e as Error);
      },
    );
  }

  /** Reads until the consumer is full, the fill must be waited for, or the end. */
  async #pump(): Promise<void> {
    const f = this.fill;
    const last = () => (this.end ?? (f.size === undefined ? Infinity : f.size - 1));
    for (;;) {
      if (this.destroyed) return;
      if (f.state === 'failed') {
        this.destroy(f.error ?? new Error('fill failed'));
        return;
      }
      if (this.#pos > last()) {
        this.push(null);
        return;
      }
      const limit = Math.min(f.readable, last() + 1);
      if (this.#pos >= limit) {
        await new Promise<void>((r) => f.once('progress', r));
        continue;
      }
      if (!this.#opened) {
        this.#opened = true;
        this.#reader = await f.openStagedReader();
      }
      if (!this.#reader) {
        // The staged object is gone: committed (read the final blob) or failed.
        if (f.state !== 'done') {
          await new Promise<void>((r) => f.once('progress', r));
          this.#opened = false;
          continue;
        }
        await this.#pipeFinal();
        return;
      }
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, limit - this.#pos));
      const n = await this.#reader.read(buf, this.#pos);
      if (n === 0) throw new Error('staged blob shorter than announced');
      this.#pos += n;
      if (!this.push(n === buf.length ? buf : buf.subarray(0, n))) return;
    }
  }

  async #pipeFinal(): Promise<void> {
    if (this.#final) return;
    const s = await this.store.openBlob(this.fill.digest, { start: this.#pos, end: this.end ?? (this.fill.size ?? 1) - 1 });
    if (!s) throw new Error('committed blob is missing');
    this.#final = s;
    s.on('data', (c: Buffer) => {
      this.#pos += c.length;
      if (!this.push(c)) s.pause();
    });
    s.once('end', () => this.push(null));
    s.once('error', (e) => this.destroy(e));
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.#final?.destroy();
    const r = this.#reader;
    this.#reader = undefined;
    if (r) r.close().then(() => cb(err), () => cb(err));
    else cb(err);
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
