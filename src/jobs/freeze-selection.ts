/** Which images `freeze --have` takes when none are named: the prefetch list, as the store holds it. */
import type { PrefetchImageConfig } from '../config/schema.js';
import { parseImageReference } from '../oci/reference.js';
import { selectTags } from '../oci/tag-pattern.js';
import type { Store } from '../storage/store.js';
import type { FreezeSelection } from './freeze.js';

/**
 * Each entry of the list as a selection: a reference as written; a repository with tag patterns
 * matched against the tags the store holds (the connected side's prefetch put them there), so
 * the bundle follows the list without asking any upstream.
 */
export async function prefetchSelection(store: Store, entries: readonly PrefetchImageConfig[], storeName: (ref: string) => string, defaultRegistry: string): Promise<FreezeSelection[]> {
  const out: FreezeSelection[] = [];
  for (const entry of entries) {
    if (typeof entry === 'string') {
      const r = parseImageReference(entry, defaultRegistry);
      out.push({ name: storeName(entry), label: entry, ref: r.digest ? { kind: 'digest', digest: r.digest } : { kind: 'tag', tag: r.tag ?? 'latest' } });
      continue;
    }
    const name = storeName(entry.name);
    for (const tag of selectTags((await store.links.listTags(name)) ?? [], entry.tags, entry.newest)) out.push({ name, label: `${entry.name}:${tag}`, ref: { kind: 'tag', tag } });
  }
  return out;
}
