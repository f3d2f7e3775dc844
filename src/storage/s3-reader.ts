import type { Readable } from 'node:stream';
import type { PositionalReader, StorageDriver } from './driver.js';

/** Reads an object at any offset: one ranged GET kept open while reads are sequential. */
export class S3Reader implements PositionalReader {
  #body: Readable | undefined;
  #iter: AsyncIterator<Buffer> | undefined;
  #left: Buffer | undefined;
  #at = -1;

  constructor(private readonly driver: Pick<StorageDriver, 'readStream'>, private readonly logical: string, private readonly size: number) {}

  async read(buf: Buffer, position: number): Promise<number> {
    if (position >= this.size || buf.length === 0) return 0;
    if (position !== this.#at || !this.#iter) {
      this.#drop();
      const body = await this.driver.readStream(this.logical, { start: position, end: this.size - 1 });
      if (!body) throw new Error(`${this.logical} is gone`);
      this.#body = body;
      this.#iter = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      this.#at = position;
    }
    let off = 0;
    while (off < buf.length) {
      let c = this.#left;
      this.#left = undefined;
      if (!c) {
        if (off > 0) break;
        const r = await this.#iter!.next();
        if (r.done) break;
        c = r.value;
      }
      const n = Math.min(c.length, buf.length - off);
      c.copy(buf, off, 0, n);
      if (n < c.length) this.#left = c.subarray(n);
      off += n;
    }
    this.#at += off;
    return off;
  }

  #drop(): void {
    this.#body?.destroy();
    this.#body = undefined;
    this.#iter = undefined;
    this.#left = undefined;
  }

  async close(): Promise<void> {
    this.#drop();
  }
}
