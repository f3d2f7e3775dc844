/**
 * A Readable of stored bytes that, when piped into an HTTP response, reads into recycled
 * buffers and writes them straight to the response, taking each buffer back once the response
 * has handed its bytes to the kernel (the write callback).
 *
 * Why: a Readable allocates a fresh buffer per read. Serving a blob to 16 clients at once
 * allocated ≈1 GiB of short-lived buffers per 64 MiB image; V8 collects them only when the
 * external memory it tracks has grown by tens of MiB, so the process held 60+ MiB of dead
 * buffers at any time (measured with heap snapshots and /proc/<pid>/smaps during the bench's
 * concurrent case). Recycling keeps the buffers in use to about one per client.
 *
 * Only an `http.ServerResponse` gets recycled buffers: its write callback fires once the socket
 * (or TLS layer) has consumed the bytes. Other destinations (a Transform may keep a chunk after
 * calling back) and plain `read()`/`for await` consumers get fresh buffers, as from any Readable.
 */
import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

/** Free buffers kept for reuse, per buffer size; beyond this many, returned ones go to the GC. */
const MAX_FREE = 16;
const pools = new Map<number, Buffer[]>();

/**
 * Each response holds up to two buffers: the one being written and the read ahead. While the
 * buffers that responses hold add up to more than LENT_LIMIT, new reads are at most BUSY_CHUNK:
 * 16 clients of 4 layers each could otherwise hold up to 64 MiB of 512 KiB buffers. Below the
 * limit, every response gets the large reads that a fast socket needs. Measured on 16
 * concurrent cold pulls of a 64 MiB image (4 runs each): 128 KiB reads whenever more than four
 * responses ran cost 0.4 CPU seconds more than 512 KiB reads for all; this limit costs about
 * as little as no limit and peaks 2–3 MiB lower.
 */
const LENT_LIMIT = 4 << 20;
const BUSY_CHUNK = 128 << 10;
/** Bytes of pooled buffers that live responses hold now. */
let lent = 0;

/** Bytes of buffers that responses hold now (tests check that every one is given back). */
export function lentBytes(): number {
  return lent;
}

/** The read size for a stream whose own chunk is `chunk`, given what responses hold now. */
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

type Got = { buf: Buffer; got: number | Buffer };

export abstract class PooledReadable extends Readable {
  #pumping = false;
  /** _read was called while a plain-mode pump ran. */
  #wanted = false;
  #direct = false;
  /** Bytes of this response's buffers counted in `lent`; settled (given back at once) when the pump ends. */
  #lent = 0;
  #settled = false;
  /** The pump pushed the end: the stream closes itself (autoDestroy). */
  #ended = false;

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

  override pipe<T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T {
    if (!(dest instanceof ServerResponse) || this.#pumping || this.readableFlowing !== null) return super.pipe(dest, opts);
    this.#direct = true;
    // A response that goes away mid-stream leaves this stream no other reader, and pipe() never
    // destroys its source: destroyed here, so the source's descriptor is closed now, not by the GC.
    const gone = () => {
      if (!this.#ended) this.destroy();
    };
    if (dest.destroyed) queueMicrotask(gone);
    else dest.once('close', gone);
    // Flowing with nothing pushed: 'end' (and then 'close') fire once the pump pushes null,
    // which is what fastify and `finished()` watch for.
    this.resume();
    this.#pumpTo(dest, opts?.end !== false).catch((e: unknown) => this.destroy(e as Error));
    return dest;
  }

  /** A whole chunk comes from the pool; the short rest of a stream gets a buffer of its own size. */
  #read(): Promise<Got> {
    const left = this.remaining();
    const size = readSize(this.chunk);
    const buf = left !== undefined && left < size ? Buffer.allocUnsafe(Math.max(1, left)) : take(size);
    this.#lent += buf.length;
    lent += buf.length;
    return this.next(buf).then(
      (got) => ({ buf, got }),
      (e: unknown) => {
        this.#give(buf);
        throw e;
      },
    );
  }

  /** The response is done with `buf`: it stops counting, and goes back to the pool when it is a pool size. */
  #give(buf: Buffer, reuse = true): void {
    if (!this.#settled) {
      this.#lent -= buf.length;
      lent -= buf.length;
    }
    if (reuse && (buf.length === this.chunk || buf.length === BUSY_CHUNK)) give(buf);
  }

  /**
   * One read ahead: the next chunk is read while the current one is being written, so the
   * file's latency and the socket's overlap (two buffers per response at most).
   */
  async #pumpTo(res: ServerResponse, end: boolean): Promise<void> {
    let ahead: Promise<Got> | undefined = this.#read();
    try {
      for (;;) {
        const { buf, got }: Got = await ahead!;
        ahead = undefined;
        if (this.destroyed || res.destroyed || got === 0) {
          this.#give(buf);
          if (got === 0 && !this.destroyed) {
            this.#ended = true;
            this.push(null);
            if (end) res.end();
          }
          return;
        }
        ahead = this.#read();
        let more: boolean;
        if (typeof got !== 'number') {
          this.#give(buf);
          more = res.write(got);
        } else {
          // A failed write never hands the buffer back to the pool: the GC takes it. (A write
          // to a socket that is already destroyed may never call back: the pump's end settles it.)
          more = res.write(got === buf.length ? buf : buf.subarray(0, got), (err) => this.#give(buf, !err));
        }
        if (!more) await drained(res);
      }
    } finally {
      // What the response still holds stops counting now: writes that never call back cannot
      // leave it counted forever.
      lent -= this.#lent;
      this.#lent = 0;
      this.#settled = true;
      // Stopped early: the read ahead's buffer goes back to the pool, its failure is moot.
      ahead?.then(({ buf }) => this.#give(buf), () => undefined);
    }
  }

  override _read(): void {
    if (this.#direct) return;
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

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
