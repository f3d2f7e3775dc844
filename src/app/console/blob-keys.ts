/**
 * The repository index's compact figures of blobs (repo-index.ts): a blob is two numbers taken
 * from its digest, so a manifest's blobs are one array of doubles, which the garbage collector
 * never scans, and sizes of distinct blobs are summed by those numbers.
 */
/** Two 52-bit numbers from a digest's hex (exact in a double): equal for equal digests, a collision out of reach. */
export function blobKey(hex: string): [number, number] {
  return [parseInt(hex.slice(0, 13), 16), parseInt(hex.slice(13, 26), 16)];
}

/** Sizes of distinct blobs, by blobKey: a first key seen with another second key (never in practice) still counts apart. */
export class DistinctBytes {
  readonly #first = new Map<number, [number, number]>();
  readonly #other = new Map<string, number>();
  add(k1: number, k2: number, size: number): void {
    const had = this.#first.get(k1);
    if (had === undefined) this.#first.set(k1, [k2, size]);
    else if (had[0] !== k2) this.#other.set(`${k1}/${k2}`, size);
  }
  addAll(blobs: number[]): void {
    for (let i = 0; i + 2 < blobs.length; i += 3) this.add(blobs[i]!, blobs[i + 1]!, blobs[i + 2]!);
  }
  total(): number {
    let n = 0;
    for (const [, size] of this.#first.values()) n += size;
    for (const size of this.#other.values()) n += size;
    return n;
  }
}

/** A digest string's blobKey (after the algorithm's name). */
export const keyOf = (digest: string): [number, number] => blobKey(digest.slice(digest.indexOf(':') + 1));

/** The few media types, one string each. */
const MEDIA_TYPES = new Map<string, string>();
export const mediaTypeOf = (t: string): string => {
  let v = MEDIA_TYPES.get(t);
  if (v === undefined && MEDIA_TYPES.size < 256) MEDIA_TYPES.set(t, (v = t));
  return v ?? t;
};
