/**
 * What the HTTP layer asks of the registry (PullThrough implements it, with or without
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

/**
 * A request's repository once resolved (router.ts): the one name every decision is made on.
 * Resolved once per request, before access is checked.
 */
export interface ResolvedName {
  /** Where the repository lives in the store. */
  readonly storeName: string;
  /**
   * A local name: it accepts pushes and never gets an upstream (push.repositories, content that
   * was pushed or imported, or a registry with no upstreams at all).
   */
  readonly local: boolean;
}

export interface ImageSource {
  /**
   * The stored repository a request names. `create`: the request may create the repository
   * (a push), so a name that is local as written is taken as written, as registry:2 does.
   */
  resolve(target: Target, opts?: { create?: boolean }): Promise<ResolvedName>;
  /** Throws DENIED when the upstream's allow and deny lists refuse the repository (policy.ts). */
  admit(repository: ResolvedName): void;
  /**
   * Resolves a manifest for a client whose Accept headers named `accept`. `pull: false` (a HEAD,
   * a prefetch) still counts as an access for eviction, but not as a pull in the console.
   */
  getManifest(repository: ResolvedName, ref: ManifestReference, accept: readonly string[], opts?: { pull?: boolean }): Promise<ManifestResponse>;
  /** A blob linked to the repository. `head` asks for size only, no download. */
  getBlob(repository: ResolvedName, digest: Digest, opts?: { head?: boolean }): Promise<BlobResponse>;
  listTags(repository: ResolvedName, page: PageRequest): Promise<Page>;
  /** A catalog page of the repositories `visible` lets through (those the caller may pull). */
  catalog(page: PageRequest, visible?: (storeName: string) => boolean): Promise<Page>;
  /** The referrers API: an OCI index of the repository's manifests whose subject is `digest`. */
  referrers(repository: ResolvedName, digest: Digest, artifactType?: string): Promise<Buffer>;
}
