import type { PositionalReader } from './driver.js';

/** Fills `buf` from `position` of a spool file that must hold those bytes already. */
export async function readFully(reader: PositionalReader, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await reader.read(off === 0 ? buf : buf.subarray(off), position + off);
    if (n === 0) throw new Error(`spool file ended ${buf.length - off} bytes early`);
    off += n;
  }
}
