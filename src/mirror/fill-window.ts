/**
 * The newest bytes of a fill stay in memory (the upstream's own chunks, shared, never copied):
 * clients that keep up with the download are served from here, with no wait for the write to
 * the store and no read back from it; clients further behind read the staged object.
 */
export const WINDOW_BYTES = 1 << 20;

/** The newest received chunks of one fill, from offset #start on (WINDOW_BYTES and a chunk at most). */
export class FillWindow {
  #chunks: Buffer[] = [];
  #start = 0;
  #bytes = 0;

  /** The fill received `chunk`, right after the bytes already here. */
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (this.#chunks.length > 1 && this.#bytes - this.#chunks[0]!.length >= WINDOW_BYTES) {
      const old = this.#chunks.shift()!;
      this.#start += old.length;
      this.#bytes -= old.length;
    }
  }

  /** Up to `max` bytes from `pos` (below what was received), or undefined when they left the window. */
  slice(pos: number, max: number): Buffer | undefined {
    let at = this.#start;
    if (pos < at) return undefined;
    for (const c of this.#chunks) {
      if (pos < at + c.length) return c.subarray(pos - at, Math.min(c.length, pos - at + max));
      at += c.length;
    }
    return undefined;
  }
}
