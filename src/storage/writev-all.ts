import type { FileHandle } from 'node:fs/promises';

/**
 * Small writes are coalesced into this much before a write(2). Not more: the kernel backs one
 * write with page-cache folios of its size, and folios of 1 MiB and up can cost several times the
 * copy. See bench/PERFORMANCE.md#write-size-and-the-page-cache.
 */
export const WRITE_BUFFER = 512 << 10;

/** Writes all of `bufs` at `position` (or the current offset), continuing where writev stopped short. */
export async function writevAll(fh: FileHandle, bufs: Buffer[], total: number, position?: number): Promise<void> {
  let left = total;
  let pos = position;
  while (left > 0) {
    const { bytesWritten } = await fh.writev(bufs, pos);
    left -= bytesWritten;
    if (pos !== undefined) pos += bytesWritten;
    if (left === 0) break;
    let skip = bytesWritten;
    while (skip > 0 && bufs.length > 0) {
      const first = bufs[0]!;
      if (first.length <= skip) {
        skip -= first.length;
        bufs = bufs.slice(1);
      } else {
        bufs = [first.subarray(skip), ...bufs.slice(1)];
        skip = 0;
      }
    }
  }
}

/** The chunk as a Buffer over the same memory (no copy). */
export function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
