/**
 * What the HTTP layer asks of the registry (MirrorRegistry implements it, with or without
 * upstreams), so the routes never know whether an answer came from disk or from the network.
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
  /** False while the blob is being filled: a Range is then answered with the whole body. */
  rangeable: boolean;
  /** The bytes, or an inclusive range of them. */
  open(range?: { start: number; end: number }): Promise<Readable>;
  /** A URL the client may fetch the stored bytes from directly (storage.redirect), when there is one. */
  redirect?(): Promise<string>;
}

export interface Page {
  items: string[];
  /** The last item returned, when more remain. */
  next?: string;
}

/**
 * The repository a request names: the name in the path and, from containerd's hosts.toml
 * mirrors, the registry it is for (`?ns=docker.io`).
 */
export interface Target {
  name: string;
  ns?: string;
}

export interface Registry {
  /** Resolves a manifest for a client whose Accept headers named `accept`. */
  getManifest(target: Target, ref: ManifestReference, accept: readonly string[]): Promise<ManifestResponse>;
  /** A blob linked to the target repository. `head` asks for size only, no download. */
  getBlob(target: Target, digest: Digest, opts?: { head?: boolean }): Promise<BlobResponse>;
  listTags(target: Target, page: PageRequest): Promise<Page>;
  catalog(page: PageRequest): Promise<Page>;
  /** Where a target's content lives in the store (for deletes and referrers). */
  storeNameFor(target: Target): Promise<string>;
}
