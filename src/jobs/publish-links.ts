/**
 * The last step of import and load: the links of the layout, in the order that keeps every
 * reader consistent (a layer link before the manifest that needs it, a revision before the tag
 * that names it, the tag's index before its current pointer), the names marked local first.
 */
import type { Digest } from '../oci/digest.js';
import type { LayoutFile } from '../storage/paths.js';
import type { Store } from '../storage/store.js';

export type LinkFile = Exclude<LayoutFile, { kind: 'blob' }>;

export const LINK_ORDER: Record<LinkFile['kind'], number> = { layer: 0, revision: 1, 'tag-index': 2, 'tag-current': 3 };

export interface LinksPublished {
  tagsAdded: number;
  tagsMoved: number;
  tagsUnchanged: number;
  repositories: number;
}

/** Writes `links` (their blobs already published); a tag already on its target is left as it is. */
export async function publishLinks(store: Store, links: Iterable<{ file: LinkFile; target: Digest }>): Promise<LinksPublished> {
  const all = [...links];
  const repositories = new Set(all.map((l) => l.file.name));
  // The names are the site's own from now on (marked before their links appear): no upstream
  // may replace them, eviction keeps them.
  for (const name of repositories) await store.local.mark(name);
  let tagsAdded = 0;
  let tagsMoved = 0;
  let tagsUnchanged = 0;
  for (const { file, target } of all.sort((a, b) => LINK_ORDER[a.file.kind] - LINK_ORDER[b.file.kind])) {
    if (file.kind === 'tag-current') {
      const before = await store.links.resolveTag(file.name, file.tag).catch(() => undefined);
      if (!before) tagsAdded++;
      else if (before.equals(target)) tagsUnchanged++;
      else tagsMoved++;
      if (before?.equals(target)) continue;
    }
    await store.links.writeLayoutLink(file, target);
  }
  return { tagsAdded, tagsMoved, tagsUnchanged, repositories: repositories.size };
}
