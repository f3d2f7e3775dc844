/**
 * What the mirror's read side is configured with and reports (pull-through.ts composes the
 * services that share them), and the route every one of its decisions is made on.
 */
import type { Digest } from '../oci/digest.js';
import type { UpstreamClient } from '../upstream/client.js';
import type { UpstreamPolicy } from './policy.js';
import type { ManifestResponse } from './image-source.js';
import type { Route } from './router.js';

export interface PullThroughOptions {
  /** How long a tag is trusted before a HEAD revalidates it. */
  tagTTL: number;
  maxManifestSize: number;
  defaultPageSize: number;
  /** Resumes of a broken blob transfer before the fill fails. */
  maxResumes: number;
  /** Answer stored blobs with a redirect to the object store (storage.redirect). */
  redirect?: boolean;
  /** Allow and deny lists per upstream (policy.ts); mirrored names only. */
  policy?: UpstreamPolicy;
}

export interface MirrorEvents {
  onManifest?(outcome: NonNullable<ManifestResponse['cache']>): void;
  onBlob?(outcome: 'hit' | 'miss'): void;
  /** `not_stored`: served to its clients, but there was no room under storage.maxSize. */
  onFill?(outcome: 'done' | 'failed' | 'not_stored', bytes: number, error?: Error): void;
  onDigestMismatch?(): void;
  /**
   * A manifest was served from (or into) the store: eviction's last-access record; `pull`: a
   * client's GET; `fetched`: it came from the upstream just now (the store gained it).
   */
  onManifestServed?(storeName: string, digest: Digest, pull: boolean, fetched: boolean): void;
  /** A request the allow and deny lists deny (enforce) or would deny (report). */
  onPolicyDenial?(upstream: string, mode: 'enforce' | 'report'): void;
  /** Revalidation found the tag on another manifest upstream; the new one is stored (audit). */
  onTagMoved?(move: { storeName: string; tag: string; upstream: string; from: Digest; to: Digest }): Promise<void>;
}

export type UpstreamRoute = Route<UpstreamClient>;
