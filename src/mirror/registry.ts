/**
 * What the HTTP layer asks of the registry. The local registry (this store, no upstream) and,
 * with upstreams configured, the pull-through mirror both implement it, so the routes never know
 * whether an answer came from disk or from the network.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import type { PageRequest } from '../oci/pagination.js';
import type { ManifestReference } from '../oci/reference.js';

export interface ManifestResponse {
  digest: Digest;
  bytes: Buffer;
  mediaType: string;
  /** How the answer was obtained, for the request log and metrics. */
  cache?: 'hit' | 'miss' | 'stale' | 'revalidated';
}

export interface BlobResponse {
  digest: Digest;
  size: number;
  cache?: 'hit' | 'miss';
  /** The bytes, or an inclusive range of them. */
  open(range?: { start: number; end: number }): Promise<Readable>;
}

export interface Page {
  items: string[];
  /** The last item returned, when more remain. */
  next?: string;
}

export interface Registry {
  /** Resolves a manifest for a client whose Accept headers named `accept`. */
  getManifest(repo: string, ref: ManifestReference, accept: readonly string[]): Promise<ManifestResponse>;
  /** A blob linked to `repo`. */
  getBlob(repo: string, digest: Digest): Promise<BlobResponse>;
  listTags(repo: string, page: PageRequest): Promise<Page>;
  catalog(page: PageRequest): Promise<Page>;
}
