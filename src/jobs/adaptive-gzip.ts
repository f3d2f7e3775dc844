/**
 * A deterministic, parallel gzip that does not spend zlib's full effort on bytes that will not
 * shrink. zlib at any level crawls through incompressible data to save nothing, and a layer full
 * of already-compressed files is common (bench/PERFORMANCE.md, load). The input is cut into fixed
 * 1 MiB blocks, each written as its own gzip member (RFC 1952 §2.2; every gunzip, Go's included,
 * reads the concatenation as one stream, as it does pigz's and eStargz's), so blocks compress on
 * zlib's thread pool side by side. A sample of each block picks its level: stored when it barely
 * shrinks, fast when it shrinks a little, `level` otherwise. Blocks and levels depend only on
 * the bytes, so the same input always gives the same output however it is chunked.
 * (Node's `params()` cannot switch levels inside one member: zlib refuses with no output space.)
 */
import { once } from 'node:events';
import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import { createGzip, deflateRaw as deflateRawCallback, type ZlibOptions } from 'node:zlib';

const deflateRaw = promisify<Buffer, ZlibOptions, Buffer>(deflateRawCallback);

const BLOCK = 2 ** 20;
const SLICE = 8 * 1024;
const SLICES = 4;
/** Blocks compressing at once, on zlib's thread pool: enough to keep a small machine busy. */
const WINDOW = 4;

/** The level a block is deflated at: stored when a sample barely shrinks at level 1. */
export async function levelFor(block: Buffer, level: number): Promise<number> {
  if (block.length < SLICES * SLICE) return level;
  const step = Math.floor(block.length / SLICES);
  const sample = Buffer.concat(Array.from({ length: SLICES }, (_, i) => block.subarray(i * step, i * step + SLICE)));
  const ratio = (await deflateRaw(sample, { level: 1, chunkSize: 2 * sample.length })).length / sample.length;
  if (ratio >= 0.97) return 0;
  if (ratio >= 0.9) return Math.min(1, level);
  return level;
}

export class AdaptiveGzip extends Transform {
  readonly #level: number;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #inFlight: Array<Promise<Buffer[]>> = [];
  #members = 0;
  /** Block buffers to copy pieces into, reused: fresh MiBs cost page faults and collections. */
  #spare: Buffer[] = [];

  constructor(level = 6) {
    super();
    this.#level = level;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    this.#drain(false).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    this.#drain(true).then(() => done(), done);
  }

  async #drain(last: boolean): Promise<void> {
    while (this.#heldBytes >= BLOCK || (last && (this.#heldBytes > 0 || this.#members === 0))) {
      const { block, spare } = this.#take(Math.min(BLOCK, this.#heldBytes));
      const member = this.#compress(block).finally(() => spare && this.#spare.push(spare));
      // Settled in order below; a rejection waiting its turn must not count as unhandled.
      member.catch(() => undefined);
      this.#inFlight.push(member);
      this.#members++;
      if (this.#inFlight.length >= WINDOW) for (const piece of await (this.#inFlight.shift() as Promise<Buffer[]>)) this.push(piece);
    }
    if (last) for (const member of this.#inFlight.splice(0)) for (const piece of await member) this.push(piece);
  }

  /** The next `n` held bytes: a view when one piece holds them, else copied into a spare. */
  #take(n: number): { block: Buffer; spare?: Buffer } {
    const first = this.#held[0];
    if (first && first.length >= n) {
      this.#held[0] = first.subarray(n);
      if (this.#held[0].length === 0) this.#held.shift();
      this.#heldBytes -= n;
      return { block: first.subarray(0, n) };
    }
    const spare = this.#spare.pop() ?? Buffer.allocUnsafeSlow(BLOCK);
    let at = 0;
    let i = 0;
    while (at < n) {
      const piece = this.#held[i] as Buffer;
      const used = Math.min(piece.length, n - at);
      piece.copy(spare, at, 0, used);
      at += used;
      if (used === piece.length) i++;
      else this.#held[i] = piece.subarray(used);
    }
    // One splice: shifting piece by piece is quadratic when the input comes in tiny chunks.
    this.#held.splice(0, i);
    this.#heldBytes -= n;
    return { block: spare.subarray(0, n), spare };
  }

  async #compress(block: Buffer): Promise<Buffer[]> {
    const level = await levelFor(block, this.#level);
    // Room for the whole member in one output buffer (a stored MiB grows by a few bytes): zlib's
    // 16 KiB default costs a round trip to the thread pool for each piece.
    const gz = createGzip({ level, chunkSize: BLOCK + 64 * 1024 });
    const pieces: Buffer[] = [];
    gz.on('data', (p: Buffer) => pieces.push(p));
    const ended = once(gz, 'end');
    gz.end(block);
    await ended;
    return pieces;
  }
}
