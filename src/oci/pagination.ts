/**
 * `n` and `last` (distribution-spec "Listing Tags", and Distribution's catalog): at most n
 * entries strictly after `last`, with a Link to the next page while more remain.
 */
import { PaginationInvalidError } from './errors.js';

export interface PageRequest {
  n?: number;
  last?: string;
}

export function parsePagination(query: { n?: unknown; last?: unknown }, maxN: number): PageRequest {
  const out: PageRequest = {};
  const { n, last } = query;
  if (n !== undefined) {
    if (typeof n !== 'string' || !/^\d{1,9}$/.test(n)) {
      throw new PaginationInvalidError(`n must be a whole number from 0 to ${maxN}`, { detail: { n: typeof n === 'string' ? n.slice(0, 40) : n } });
    }
    const v = Number(n);
    if (v > maxN) throw new PaginationInvalidError(`n must be at most ${maxN}`, { detail: { n: v } });
    out.n = v;
  }
  if (last !== undefined) {
    if (typeof last !== 'string' || last.length > 512) throw new PaginationInvalidError('last must be a single value of at most 512 characters');
    out.last = last;
  }
  return out;
}

/** The first index of `sorted` whose item is greater than `last`. */
function after(sorted: readonly string[], last: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) <= last) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function paginate(sorted: readonly string[], page: PageRequest, defaultN: number): { items: string[]; next?: string } {
  const n = page.n ?? defaultN;
  if (n === 0) return { items: [] };
  const from = page.last ? after(sorted, page.last) : 0;
  const items = sorted.slice(from, from + n);
  return from + n < sorted.length ? { items, next: items[items.length - 1] as string } : { items };
}

/** `</v2/…?last=…&n=…>; rel="next"`, Distribution's form. */
export function nextLink(path: string, n: number, last: string, ns?: string): string {
  const q = new URLSearchParams({ last, n: String(n) });
  // A hosts.toml client's next page must name the same registry as its first.
  if (ns !== undefined && ns !== '') q.set('ns', ns);
  return `<${path}?${q.toString()}>; rel="next"`;
}
