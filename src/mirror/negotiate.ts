import type { Digest } from '../oci/digest.js';
import { ManifestUnknownError } from '../oci/errors.js';
import { parseManifest, platformMatches } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import type { ManifestReference } from '../oci/reference.js';

export interface NegotiableManifest {
  digest: Digest;
  bytes: Buffer;
  mediaType: string;
}

/**
 * Picks what to answer for a client's Accept headers, as Distribution 2.8 does
 * (registry/handlers/manifests.go, GetManifest). The stored bytes are never altered:
 * - A Docker manifest list fetched by tag by a client that does not accept lists is answered
 *   with its linux/amd64 image (old Docker clients); by digest it is served as is.
 * - An OCI manifest or index is only served to a client that accepts that OCI type, else
 *   MANIFEST_UNKNOWN, because a client that cannot parse it would fail later and obscurely.
 * - Docker schema2 is served even without an Accept naming it: Distribution 2.8 would convert it
 *   to signed schema1, which no maintained client needs and which would change the digest.
 * A request without any Accept header gets the stored type (what curl and most tools expect).
 */
export async function negotiateManifest<M extends NegotiableManifest>(
  m: M,
  ref: ManifestReference,
  accept: readonly string[],
  child: (d: Digest) => Promise<M | undefined>,
): Promise<M> {
  if (accept.length === 0 || accept.includes(m.mediaType) || accept.includes('*/*')) return m;
  switch (m.mediaType) {
    case MediaType.DockerManifestList: {
      if (ref.kind !== 'tag') return m;
      const list = parseManifest(m.bytes, m.mediaType);
      const amd64 = list.manifests.find((d) => platformMatches(d.platform, { os: 'linux', architecture: 'amd64' }));
      const c = amd64 && (await child(amd64.digest));
      if (!c) throw new ManifestUnknownError('manifest list has no linux/amd64 image for a client that does not accept lists');
      return c;
    }
    case MediaType.OciManifest:
      throw new ManifestUnknownError('OCI manifest found, but accept header does not support OCI manifests');
    case MediaType.OciIndex:
      throw new ManifestUnknownError('OCI index found, but accept header does not support OCI indexes');
    default:
      return m;
  }
}
