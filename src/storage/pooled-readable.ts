/**
 * A Readable of stored bytes that can lend recycled buffers: a consumer that knows when it is
 * done with each one (http/blob-body.ts: a response's write callback fires once the socket or
 * TLS layer has consumed the bytes) borrows them with lend() and gives each back, writing them
 * itself. lendOnPipe() lets such a consumer take over a pipe() (fastify pipes reply bodies).
 *
 * Why: a Readable allocates a fresh buffer per read, and V8 frees them only after tens of MiB,
 * so many clients at once kept many dead buffers resident. Recycling keeps the buffers in use to
 * about one per client. See bench/PERFORMANCE.md#recycled-read-buffers.
 *
 * Everything else (a Transform may keep a chunk after calling back, and plain `read()`/`for await`
 * consumers) gets fresh buffers, as from any Readable.
 */
import { Readable } from 'node:stream';

/** Free buffers kept for reuse, per buffer size; beyond this many, returned ones go to the GC. */
const MAX_FREE = 16;
const pools = new Map<number, Buffer[]>();

/**
 * Each borrower (a response) holds up to two buffers: the one being written and the read
 * ahead. While the buffers that borrowers hold add up to more than LENT_LIMIT, new reads are at
 * most BUSY_CHUNK: 16 clients of 4 layers each could otherwise hold up to 64 MiB of 512 KiB
 * buffers. Below the limit, every borrower gets the large reads that a fast socket needs. A
 * limit on bytes, not on borrowers: see bench/PERFORMANCE.md#smaller-reads-under-concurrency.
 */
const LENT_LIMIT = 4 << 20;
const BUSY_CHUNK = 128 << 10;
/** Bytes of pooled buffers that borrowers hold now. */
let lent = 0;

/** Bytes of buffers that borrowers hold now (tests check that every one is given back). */
export function lentBytes(): number {
  return lent;
}

/** The read size for a stream whose own chunk is `chunk`, given what borrowers hold now. */
export function readSize(chunk: number): number {
  return lent + chunk > LENT_LIMIT ? Math.min(chunk, BUSY_CHUNK) : chunk;
}

function take(size: number): Buffer {
  return pools.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
}

function give(b: Buffer): void {
  let free = pools.get(b.length);
  if (!free) pools.set(b.length, (free = []));
  if (free.length < MAX_FREE) free.push(b);
}

/** Bytes lent by lend(). */
export interface LentBuffer {
  /** All or part of a pooled buffer, or a buffer of the source's own. */
  bytes: Buffer;
  /** The borrower is done with `bytes`; `reuse` false (a failed write may still hold them): the GC takes the buffer. */
  giveBack(reuse?: boolean): void;
}

/** Takes `dest` over and writes the stream's lent buffers to it; false: `dest` is piped as by any Readable. */
export type LendingPipe = (dest: NodeJS.WritableStream, end: boolean) => boolean;

export abstract class PooledReadable extends Readable {
  #pumping = false;
  /** _read was called while a plain-mode pump ran. */
  #wanted = false;
  /** A borrower reads for the stream (lend()): its own reads stop. */
  #lending = false;
  #onPipe: LendingPipe | undefined;
  /** Bytes of the borrower's buffers counted in `lent`; settled (given back at once) by stopLending(). */
  #lent = 0;
  #settled = false;

  /** `chunk`: the read size, and the size of the recycled buffers. */
  constructor(private readonly chunk: number) {
    super({ highWaterMark: chunk });
  }

  /**
   * Reads the next bytes into `buf` (at most its length) and resolves with how many; 0 at the
   * end. Or resolves with a Buffer of its own that holds the next bytes (never modified
   * afterwards: it is sent as is and `buf` stays unused). May wait (a fill that is still
   * growing). Throws to fail the stream.
   */
  protected abstract next(buf: Buffer): Promise<number | Buffer>;

  /** Releases what the source holds (a descriptor); called once, on end, error or destroy. */
  protected abstract release(): Promise<void>;

  /** Bytes left when known, so a short read does not allocate a whole chunk. */
  protected remaining(): number | undefined {
    return undefined;
  }

  /** pipe() offers its destination to `take` first, while the stream has not been read otherwise. */
  lendOnPipe(take: LendingPipe): this {
    this.#onPipe = take;
    return this;
  }

  override pipe<T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T {
    const take = this.#onPipe;
    if (take && !this.#pumping && this.readableFlowing === null && take(dest, opts?.end !== false)) return dest;
    return super.pipe(dest, opts);
  }

  /**
   * The next bytes, in a buffer lent until its giveBack(); undefined at the end. A whole chunk
   * comes from the pool; the short rest of a stream gets a buffer of its own size. The first call
   * stops the stream's own reads: from then on the borrower reads for it, and pushes the end.
   */
  lend(): Promise<LentBuffer | undefined> {
    this.#lending = true;
    const left = this.remaining();
    const size = readSize(this.chunk);
    const buf = left !== undefined && left < size ? Buffer.allocUnsafe(Math.max(1, left)) : take(size);
    this.#lent += buf.length;
    lent += buf.length;
    return this.next(buf).then(
      (got) => {
        if (got === 0 || typeof got !== 'number') {
          this.#give(buf);
          return got === 0 ? undefined : { bytes: got, giveBack: () => undefined };
        }
        return { bytes: got === buf.length ? buf : buf.subarray(0, got), giveBack: (reuse = true) => this.#give(buf, reuse) };
      },
      (e: unknown) => {
        this.#give(buf);
        throw e;
      },
    );
  }

  /**
   * The borrower has stopped: what it still holds stops counting now, so buffers whose writes
   * never call back (a socket destroyed meanwhile) cannot stay counted forever.
   */
  stopLending(): void {
    lent -= this.#lent;
    this.#lent = 0;
    this.#settled = true;
  }

  /** The borrower is done with `buf`: it stops counting, and goes back to the pool when it is a pool size. */
  #give(buf: Buffer, reuse = true): void {
    if (!this.#settled) {
      this.#lent -= buf.length;
      lent -= buf.length;
    }
    if (reuse && (buf.length === this.chunk || buf.length === BUSY_CHUNK)) give(buf);
  }

  override _read(): void {
    if (this.#lending) return;
    if (this.#pumping) {
      // Asked again while a read is on its way: the pump goes on past a full buffer once.
      this.#wanted = true;
      return;
    }
    this.#pumping = true;
    this.#readSome().catch((e: unknown) => this.destroy(e as Error));
  }

  /**
   * Plain Readable mode: fresh buffers (the consumer may keep them), until the consumer is full.
   * The pump stops being busy in the same tick as its last push, so the consumer's next _read
   * (which may come before any promise settles) always starts a pump; one that comes during a
   * pump is remembered in #wanted. Either lost, the stream would wait forever for a push.
   */
  async #readSome(): Promise<void> {
    try {
      for (;;) {
        this.#wanted = false;
        if (this.destroyed) return;
        const buf = Buffer.allocUnsafe(Math.max(1, Math.min(this.chunk, this.remaining() ?? this.chunk)));
        const got = await this.next(buf);
        if (this.destroyed) return;
        if (got === 0) {
          this.push(null);
          return;
        }
        const more = this.push(typeof got !== 'number' ? got : got === buf.length ? buf : buf.subarray(0, got));
        if (!more && !this.#wanted) return;
      }
    } finally {
      this.#pumping = false;
    }
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.release().then(() => cb(err), () => cb(err));
  }
}
