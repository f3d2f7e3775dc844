/** Where the standard layout keeps things on disk, for tests that check bytes in the store. */
import { stat } from 'node:fs/promises';
import path from 'node:path';

/** The data file of blob `digest` (sha256:…) under a store root. */
export function blobFile(root: string, digest: string): string {
  return path.join(root, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
}

export function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}
