/**
 * The on-disk layout: exactly what CNCF Distribution's filesystem driver writes
 * (distribution/registry/storage/paths.go), so `registry:2` can serve the same directory and a
 * plain tar of it is a valid bundle. Paths here are logical, '/'-separated and relative to the
 * storage root; drivers map them onto their medium.
 *
 *   <root>/
 *   ├── docker/registry/v2/
 *   │   ├── blobs/sha256/ab/abcdef…/data                                 the bytes, by digest
 *   │   └── repositories/<name>/
 *   │       ├── _layers/sha256/<hex>/link                                "sha256:<hex>" (no newline)
 *   │       ├── _manifests/revisions/sha256/<hex>/link
 *   │       ├── _manifests/tags/<tag>/current/link
 *   │       ├── _manifests/tags/<tag>/index/sha256/<hex>/link
 *   │       └── _uploads/<uuid>/{data,startedat,hashstates/…}
 *   └── .airlock/                                                        airlock's own bookkeeping,
 *       └── tmp/<random>                                                 outside docker/ (temp files
 *                                                                        live on the same filesystem
 *                                                                        so a rename commits them)
 *
 * Every name, tag and digest reaching these functions has been validated against the
 * distribution grammar (oci/reference.ts, oci/digest.ts); none can contain '..' or '/' where a
 * component is expected. The filesystem driver checks containment once more.
 */
import type { Digest } from '../oci/digest.js';

export const V2 = 'docker/registry/v2';
export const BLOBS = `${V2}/blobs`;
export const REPOSITORIES = `${V2}/repositories`;
export const AIRLOCK = '.airlock';
export const TMP = `${AIRLOCK}/tmp`;

export function blobDataPath(d: Digest): string {
  return `${BLOBS}/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}/data`;
}

export function blobDir(d: Digest): string {
  return `${BLOBS}/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}`;
}

export function repositoryPath(name: string): string {
  return `${REPOSITORIES}/${name}`;
}

export function layerLinkPath(name: string, d: Digest): string {
  return `${REPOSITORIES}/${name}/_layers/${d.algorithm}/${d.hex}/link`;
}

export function layersPath(name: string): string {
  return `${REPOSITORIES}/${name}/_layers`;
}

export function manifestsPath(name: string): string {
  return `${REPOSITORIES}/${name}/_manifests`;
}

export function revisionLinkPath(name: string, d: Digest): string {
  return `${REPOSITORIES}/${name}/_manifests/revisions/${d.algorithm}/${d.hex}/link`;
}

export function revisionsPath(name: string): string {
  return `${REPOSITORIES}/${name}/_manifests/revisions`;
}

export function tagsPath(name: string): string {
  return `${REPOSITORIES}/${name}/_manifests/tags`;
}

export function tagPath(name: string, tag: string): string {
  return `${REPOSITORIES}/${name}/_manifests/tags/${tag}`;
}

export function tagCurrentLinkPath(name: string, tag: string): string {
  return `${REPOSITORIES}/${name}/_manifests/tags/${tag}/current/link`;
}

export function tagIndexLinkPath(name: string, tag: string, d: Digest): string {
  return `${REPOSITORIES}/${name}/_manifests/tags/${tag}/index/${d.algorithm}/${d.hex}/link`;
}

export function uploadsPath(name: string): string {
  return `${REPOSITORIES}/${name}/_uploads`;
}

/** The link file's content, as Distribution writes it: the digest string, no newline. */
export function linkContent(d: Digest): string {
  return d.toString();
}
