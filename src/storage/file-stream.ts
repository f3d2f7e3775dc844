import type { FileHandle } from 'node:fs/promises';
import { PooledReadable } from './pooled-readable.js';

/**
 * Read size for stored files: with one read ahead, 512 KiB keeps up with loopback sockets (the
 * per-read overhead dominates below that), and a response holds at most two.
 * See bench/PERFORMANCE.md#stored-file-read-size.
 */
const LOCAL_READ = 512 << 10;

/** A file (or an inclusive range of it) as a stream; reads at the stream's own position. */
export class FileStream extends PooledReadable {
  #pos: number;

  constructor(private readonly fh: FileHandle, start: number, private readonly end: number | undefined) {
    super(LOCAL_READ);
    this.#pos = start;
  }

  protected override remaining(): number | undefined {
    return this.end === undefined ? undefined : this.end + 1 - this.#pos;
  }

  protected async next(buf: Buffer): Promise<number> {
    const want = Math.min(buf.length, this.remaining() ?? buf.length);
    if (want <= 0) return 0;
    const { bytesRead } = await this.fh.read(buf, 0, want, this.#pos);
    this.#pos += bytesRead;
    return bytesRead;
  }

  protected release(): Promise<void> {
    return this.fh.close();
  }
}
