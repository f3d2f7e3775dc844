/**
 * Single byte ranges (RFC 9110 §14.1.2). Anything we do not serve as one range (several ranges,
 * another unit, bad syntax) is ignored and the whole body is sent, as §14.2 allows; only a
 * well-formed range that starts past the end is unsatisfiable (416).
 */
export type RangeResult = { kind: 'none' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

const SINGLE = /^bytes=(\d{0,16})-(\d{0,16})$/;

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined || header.length > 1024) return { kind: 'none' };
  const m = SINGLE.exec(header.trim());
  if (!m) return { kind: 'none' };
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return { kind: 'none' };
  if (a === '') {
    // Suffix range: the last b bytes.
    const n = Number(b);
    if (!Number.isSafeInteger(n)) return { kind: 'none' };
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Number(b);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return { kind: 'none' };
  if (b !== '' && end < start) return { kind: 'none' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end: Math.min(end, size - 1) };
}

export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`;
}
