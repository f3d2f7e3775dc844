/** Manifest media types (image-spec, and Docker's image manifest v2 schema 2). */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifestV1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  OctetStream: 'application/octet-stream',
} as const;

/**
 * Every manifest type, lists first. Asking an upstream for all four modern types matters:
 * without the list types Docker Hub silently answers with a single platform.
 */
export const MANIFEST_MEDIA_TYPES: readonly string[] = Object.freeze([
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
  MediaType.DockerManifestV1Signed,
  MediaType.DockerManifestV1,
]);

export function isIndexMediaType(t: string): boolean {
  return t === MediaType.OciIndex || t === MediaType.DockerManifestList;
}

export function isManifestMediaType(t: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(t);
}

/** Media types named by one or more Accept headers, parameters (`;q=`) dropped, order kept. */
export function parseAccept(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const out: string[] = [];
  for (const h of Array.isArray(header) ? header : [header]) {
    for (const part of h.split(',')) {
      const semi = part.indexOf(';');
      const t = (semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase();
      if (t && !out.includes(t)) out.push(t);
    }
  }
  return out;
}
