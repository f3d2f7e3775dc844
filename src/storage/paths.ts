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
 *       ├── tmp/<random>                                                 outside docker/ (temp files
 *       │                                                                live on the same filesystem
 *       │                                                                so a rename commits them)
 *       ├── pins/<alg>-<hex of sha256(name@digest)>                      prefetched images, kept by
 *       │                                                                eviction ({name, digest})
 *       ├── local/<name>/_local                                          names that hold pushed or
 *       │                                                                imported content: never
 *       │                                                                routed to an upstream
 *       ├── fleet/{leases/<alg>-<hex>,tags/…}                            replicas' fill leases and
 *       │                                                                tag markers
 *       └── quarantine/<alg>-<hex>-<time>/data                           blobs `verify --repair` found
 *                                                                        corrupt
 *
 * Every name, tag and digest reaching these functions has been validated against the
 * distribution grammar (oci/reference.ts, oci/digest.ts); none can contain '..' or '/' where a
 * component is expected. The filesystem driver checks containment once more.
 */
import { Digest, digestBytes } from '../oci/digest.js';
import { isValidRepositoryName, isValidTag } from '../oci/reference.js';

export const V2 = 'docker/registry/v2';
export const BLOBS = `${V2}/blobs`;
export const REPOSITORIES = `${V2}/repositories`;
export const AIRLOCK = '.airlock';
export const TMP = `${AIRLOCK}/tmp`;
export const PINS = `${AIRLOCK}/pins`;
export const QUARANTINE = `${AIRLOCK}/quarantine`;
export const LOCAL = `${AIRLOCK}/local`;
/** Replicas' coordination objects (fill leases, tag revalidation markers). */
export const FLEET = `${AIRLOCK}/fleet`;

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

/** The marker of a local name (no component may start with '_', so it never meets a child name). */
export function localMarkerPath(name: string): string {
  return `${LOCAL}/${name}/_local`;
}

/** A pin's file: named by a hash of `name@digest`, which holds characters a path must not. */
export function pinPath(name: string, d: Digest): string {
  return `${PINS}/sha256-${digestBytes(Buffer.from(`${name}@${d.toString()}`)).hex}`;
}

/** Where a corrupt blob's directory goes (the time keeps two quarantines of one digest apart). */
export function quarantinePath(d: Digest, at: number): string {
  return `${QUARANTINE}/${d.algorithm}-${d.hex}-${at}`;
}

/** A coordination object of the fleet (`leases/<alg>-<hex>`, `tags/…`: fleet-lease.ts, mirror/fleet.ts). */
export function fleetPath(name: string): string {
  return `${FLEET}/${name}`;
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

/** An upload session's directory: `data` holds the bytes so far, `startedat` when it began. */
export function uploadPath(name: string, id: string): string {
  return `${REPOSITORIES}/${name}/_uploads/${id}`;
}

export function uploadDataPath(name: string, id: string): string {
  return `${uploadPath(name, id)}/data`;
}

export function uploadStartedAtPath(name: string, id: string): string {
  return `${uploadPath(name, id)}/startedat`;
}

/** The link file's content, as Distribution writes it: the digest string, no newline. */
export function linkContent(d: Digest): string {
  return d.toString();
}

/** A file of the standard layout, as named by a path relative to the root. */
export type LayoutFile =
  | { kind: 'blob'; digest: Digest }
  | { kind: 'layer'; name: string; digest: Digest }
  | { kind: 'revision'; name: string; digest: Digest }
  | { kind: 'tag-current'; name: string; tag: string }
  | { kind: 'tag-index'; name: string; tag: string; digest: Digest };

const BLOB_RE = /^docker\/registry\/v2\/blobs\/(sha256|sha512)\/([0-9a-f]{2})\/([0-9a-f]+)\/data$/;
const REPO_FILE_RE = /^docker\/registry\/v2\/repositories\/(.+?)\/(_layers\/(sha256|sha512)\/([0-9a-f]+)\/link|_manifests\/revisions\/(sha256|sha512)\/([0-9a-f]+)\/link|_manifests\/tags\/([^/]+)\/current\/link|_manifests\/tags\/([^/]+)\/index\/(sha256|sha512)\/([0-9a-f]+)\/link)$/;

/**
 * Parses a path of the layout (a bundle entry), or returns undefined for anything else: names
 * and tags must pass the distribution grammar and digests must be well formed, so a parsed path
 * can never leave the layout.
 */
export function parseLayoutPath(path: string): LayoutFile | undefined {
  const b = BLOB_RE.exec(path);
  if (b) {
    const d = Digest.tryParse(`${b[1]}:${b[3]}`);
    return d && d.hex.startsWith(b[2] as string) ? { kind: 'blob', digest: d } : undefined;
  }
  const m = REPO_FILE_RE.exec(path);
  if (!m) return undefined;
  const name = m[1] as string;
  if (!isValidRepositoryName(name)) return undefined;
  const digest = (alg: string | undefined, hex: string | undefined) => (alg && hex ? Digest.tryParse(`${alg}:${hex}`) : undefined);
  if (m[3]) {
    const d = digest(m[3], m[4]);
    return d && { kind: 'layer', name, digest: d };
  }
  if (m[5]) {
    const d = digest(m[5], m[6]);
    return d && { kind: 'revision', name, digest: d };
  }
  if (m[7] !== undefined) return isValidTag(m[7]) ? { kind: 'tag-current', name, tag: m[7] } : undefined;
  const d = digest(m[9], m[10]);
  return d && isValidTag(m[8] as string) ? { kind: 'tag-index', name, tag: m[8] as string, digest: d } : undefined;
}

/** The path of a layout file (the inverse of parseLayoutPath). */
export function layoutPath(f: LayoutFile): string {
  switch (f.kind) {
    case 'blob':
      return blobDataPath(f.digest);
    case 'layer':
      return layerLinkPath(f.name, f.digest);
    case 'revision':
      return revisionLinkPath(f.name, f.digest);
    case 'tag-current':
      return tagCurrentLinkPath(f.name, f.tag);
    case 'tag-index':
      return tagIndexLinkPath(f.name, f.tag, f.digest);
  }
}

export function tagIndexPath(name: string, tag: string): string {
  return `${REPOSITORIES}/${name}/_manifests/tags/${tag}/index`;
}
