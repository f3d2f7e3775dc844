/** Reading a bundle's small entries: whole entries and its SHA256SUMS. */
import { BundleError } from './bundle-error.js';
import { SUMS } from './bundle.js';

/** The bytes of a tar entry, reading at most one byte past `size` (the caller checks). */
export async function readAll(entry: AsyncIterable<unknown>, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of entry) {
    chunks.push(c as Buffer);
    n += (c as Buffer).length;
    if (n > size) break;
  }
  return Buffer.concat(chunks);
}

/** SHA256SUMS as `sha256sum` writes it: path → hex digest. */
export function parseSums(bytes: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of bytes.toString('utf8').split('\n')) {
    if (!line) continue;
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new BundleError(`${SUMS}: malformed line ${JSON.stringify(line.slice(0, 100))}`);
    out.set((m[2] as string).replace(/^\.\//, ''), m[1] as string);
  }
  return out;
}
