import type { PageRequest } from '../oci/pagination.js';
import type { Store } from '../storage/store.js';
import type { Page } from './image-source.js';

/**
 * A catalog page in Distribution's order, which is its directory walk: `last` is a position in
 * that walk, not a string comparison. Collects at most n entries without loading the whole list;
 * repositories `visible` refuses (the caller may not pull them) are skipped, never counted.
 */
export async function catalogPage(store: Store, page: PageRequest, defaultN: number, visible: (name: string) => boolean = () => true): Promise<Page> {
  const n = page.n ?? defaultN;
  const items: string[] = [];
  if (n === 0) return { items };
  const last = page.last ?? '';
  for await (const repo of store.links.repositories()) {
    if ((last !== '' && !walkOrderAfter(repo, last)) || !visible(repo)) continue;
    if (items.length === n) return { items, next: items[items.length - 1] };
    items.push(repo);
  }
  return { items };
}

/** Whether `a` comes after `b` in a depth-first walk with lexically sorted components. */
export function walkOrderAfter(a: string, b: string): boolean {
  const ac = a.split('/');
  const bc = b.split('/');
  for (let i = 0; i < Math.min(ac.length, bc.length); i++) {
    const x = ac[i] as string;
    const y = bc[i] as string;
    if (x !== y) return x > y;
  }
  return ac.length > bc.length;
}
