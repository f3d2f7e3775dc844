import type { Digest } from '../oci/digest.js';
import { BlobUnknownError, ManifestUnknownError, NameUnknownError } from '../oci/errors.js';
import { paginate, type PageRequest } from '../oci/pagination.js';
import type { ManifestReference } from '../oci/reference.js';
import type { RegistryStore, StoredManifest } from '../storage/registry-store.js';
import { negotiateManifest } from './negotiate.js';
import type { BlobResponse, ManifestResponse, Page, Registry } from './registry.js';

export interface LocalRegistryOptions {
  /** Entries in a page when the client gives no `n`. */
  defaultPageSize: number;
}

/** Serves the store as it is: no upstream, never goes out to the network. */
export class LocalRegistry implements Registry {
  constructor(readonly store: RegistryStore, private readonly opts: LocalRegistryOptions) {}

  async getManifest(repo: string, ref: ManifestReference, accept: readonly string[]): Promise<ManifestResponse> {
    const m = await this.store.getManifest(repo, ref);
    if (!m) throw manifestUnknown(repo, ref);
    const chosen = await negotiateManifest(m, ref, accept, (d) => this.#child(repo, d));
    return { ...chosen, cache: 'hit' };
  }

  async #child(repo: string, d: Digest): Promise<StoredManifest | undefined> {
    return this.store.getManifest(repo, { kind: 'digest', digest: d });
  }

  async getBlob(repo: string, digest: Digest): Promise<BlobResponse> {
    const [info, linked] = await Promise.all([this.store.statBlob(digest), this.store.isBlobLinked(repo, digest)]);
    if (!info || !linked) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
    return {
      digest,
      size: info.size,
      cache: 'hit',
      open: async (range) => {
        const s = await this.store.openBlob(digest, range);
        // Removed between stat and open (gc): a clean 404 rather than a broken stream.
        if (!s) throw new BlobUnknownError(undefined, { detail: { digest: digest.toString() } });
        return s;
      },
    };
  }

  async listTags(repo: string, page: PageRequest): Promise<Page> {
    const tags = await this.store.listTags(repo);
    if (!tags) throw new NameUnknownError(`repository name not known to registry`, { detail: { name: repo } });
    return paginate(tags, page, this.opts.defaultPageSize);
  }

  async catalog(page: PageRequest): Promise<Page> {
    // Distribution's order is its directory walk, so `last` is a position in that walk, not a
    // string comparison: collect up to n entries after `last` without loading the whole list.
    const n = page.n ?? this.opts.defaultPageSize;
    const items: string[] = [];
    if (n === 0) return { items };
    let passedLast = page.last === undefined || page.last === '';
    for await (const repo of this.store.repositories()) {
      if (!passedLast) {
        if (repo === page.last) passedLast = true;
        else if (walkOrderAfter(repo, page.last as string)) passedLast = true;
        else continue;
        if (repo === page.last) continue;
      }
      if (items.length === n) return { items, next: items[items.length - 1] };
      items.push(repo);
    }
    return { items };
  }
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

export function manifestUnknown(repo: string, ref: ManifestReference): ManifestUnknownError {
  const detail = ref.kind === 'tag' ? { name: repo, tag: ref.tag } : { name: repo, digest: ref.digest.toString() };
  return new ManifestUnknownError(undefined, { detail });
}
