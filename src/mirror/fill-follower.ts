/**
 * One client's stream of a fill (blob-fill.ts): the newest bytes from the fill's in-memory window
 * while it keeps up, else the staged object as the fill writes it (waiting for progress when it
 * has caught up), and the committed blob once the staged object has moved. A reader opened
 * before the commit keeps its descriptor (the same inode) to the end.
 */
import type { PositionalReader } from '../storage/driver.js';
import { PooledReadable } from '../storage/pooled-readable.js';
import type { Store } from '../storage/store.js';
import type { BlobFill } from './blob-fill.js';
import type { FillPace } from './fill-pace.js';
import type { FillWindow } from './fill-window.js';

/**
 * Read size for clients behind the window. Smaller than stored-file reads: many clients follow
 * one fill at once, and each holds up to two of these.
 */
const FOLLOWER_READ = 128 << 10;

export class FillFollower extends PooledReadable {
  #pos: number;
  /** When this stream last took bytes (performance.now()), for the fill's pace. */
  movedAt = performance.now();
  #reader: PositionalReader | undefined;
  #opened = false;
  #final = false;

  constructor(
    private readonly fill: BlobFill,
    /** The fill's pace and window, reached directly: they are on every read's path. */
    private readonly pace: FillPace,
    private readonly window: FillWindow,
    private readonly store: Store,
    start: number,
    private readonly end?: number,
  ) {
    super(FOLLOWER_READ);
    this.#pos = start;
    pace.attach(this);
  }

  /** The next byte this stream hands on. */
  get pos(): number {
    return this.#pos;
  }

  #moved(n: number): void {
    this.#pos += n;
    this.movedAt = performance.now();
    this.pace.advanced();
  }

  #last(): number {
    const f = this.fill;
    return this.end ?? (f.size === undefined ? Infinity : f.size - 1);
  }

  protected override remaining(): number | undefined {
    const last = this.#last();
    return last === Infinity ? undefined : last + 1 - this.#pos;
  }

  protected async next(buf: Buffer): Promise<number | Buffer> {
    const f = this.fill;
    for (;;) {
      if (this.destroyed) return 0;
      if (f.state === 'failed') throw f.error ?? new Error('fill failed');
      const last = this.#last();
      if (this.#pos > last) return 0;
      const inMemory = Math.min(f.received, last + 1);
      if (this.#pos < inMemory) {
        const b = this.window.slice(this.#pos, Math.min(buf.length, inMemory - this.#pos));
        if (b) {
          this.#moved(b.length);
          return b;
        }
      }
      const limit = this.#final ? last + 1 : Math.min(f.readable, last + 1);
      if (this.#pos >= limit) {
        await new Promise<void>((r) => f.once('progress', r));
        continue;
      }
      if (!this.#opened) {
        this.#opened = true;
        this.#reader = await f.openStagedReader();
        if (this.destroyed) return this.#closeLate();
      }
      if (!this.#reader) {
        // The staged object is gone: committed (read the stored blob) or failed.
        if (f.state !== 'done') {
          await new Promise<void>((r) => f.once('progress', r));
          this.#opened = false;
          continue;
        }
        if (f.stored === false) throw new Error('the blob was not stored and its staged copy is gone');
        this.#reader = await this.store.blobs.openReader(f.digest);
        if (this.destroyed) return this.#closeLate();
        if (!this.#reader) throw new Error('committed blob is missing');
        this.#final = true;
        continue;
      }
      const n = await this.#reader.read(buf.length > limit - this.#pos ? buf.subarray(0, limit - this.#pos) : buf, this.#pos);
      if (n === 0) throw new Error('staged blob shorter than announced');
      this.#moved(n);
      return n;
    }
  }

  /** A reader that was still being opened when the stream was destroyed: closed here, not leaked. */
  async #closeLate(): Promise<number> {
    await this.release();
    return 0;
  }

  protected async release(): Promise<void> {
    this.fill.detach(this);
    const r = this.#reader;
    this.#reader = undefined;
    await r?.close();
  }
}
