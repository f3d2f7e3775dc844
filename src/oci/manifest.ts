/**
 * Manifests and indexes (image-spec manifest.md, image-index.md, descriptor.md; Docker image
 * manifest v2 schema 2 and manifest list). Parsing never alters the bytes: callers keep the
 * original buffer and use this only to read references and the media type.
 */
import { Digest } from './digest.js';
import { MirrorError, ManifestInvalidError } from './errors.js';
import { MediaType, isManifestMediaType } from './media-types.js';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: Platform;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface ParsedManifest {
  mediaType: string;
  kind: 'image' | 'index';
  schemaVersion: number;
  config?: Descriptor;
  layers: Descriptor[];
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) throw new ManifestInvalidError(`${where}: annotations must map strings to strings`);
  return v as Record<string, string>;
}

function descriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw new ManifestInvalidError(`${where}: a descriptor must be an object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || mediaType.length === 0 || mediaType.length > 255) throw new ManifestInvalidError(`${where}: mediaType is missing or invalid`);
  if (typeof digest !== 'string') throw new ManifestInvalidError(`${where}: digest is missing`);
  let d: Digest;
  try {
    d = Digest.parse(digest);
  } catch (e) {
    throw new ManifestInvalidError(`${where}: ${(e as Error).message}`, { cause: e });
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new ManifestInvalidError(`${where}: size must be a non-negative integer`);
  const out: Descriptor = { mediaType, digest: d, size };
  if (v.platform !== undefined) {
    const p = v.platform;
    if (!isObject(p) || typeof p.architecture !== 'string' || typeof p.os !== 'string') throw new ManifestInvalidError(`${where}: platform needs os and architecture`);
    out.platform = p as unknown as Platform;
  }
  if (typeof v.artifactType === 'string') out.artifactType = v.artifactType;
  const ann = stringMap(v.annotations, where);
  if (ann) out.annotations = ann;
  if (Array.isArray(v.urls)) out.urls = v.urls.filter((u): u is string => typeof u === 'string');
  return out;
}

function descriptors(v: unknown, where: string): Descriptor[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ManifestInvalidError(`${where} must be an array`);
  return v.map((d, i) => descriptor(d, `${where}[${i}]`));
}

/** Parses manifest bytes. Throws ManifestInvalidError, and only that, for any bad input. */
export function parseManifest(bytes: Uint8Array, contentType?: string): ParsedManifest {
  try {
    return parse(bytes, contentType);
  } catch (e) {
    if (e instanceof ManifestInvalidError) throw e;
    throw new ManifestInvalidError(e instanceof MirrorError || e instanceof Error ? e.message : 'manifest invalid', { cause: e });
  }
}

function parse(bytes: Uint8Array, contentType?: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new ManifestInvalidError(`manifest is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!isObject(json)) throw new ManifestInvalidError('manifest must be a JSON object');
  const { schemaVersion } = json;
  if (schemaVersion === 1) throw new ManifestInvalidError('Docker image manifest schema 1 is not supported (deprecated); push schema 2 or OCI');
  if (schemaVersion !== 2) throw new ManifestInvalidError('manifest schemaVersion must be 2');
  const ct = contentType?.split(';')[0]?.trim().toLowerCase();
  let mediaType: string;
  if (json.mediaType !== undefined) {
    if (typeof json.mediaType !== 'string') throw new ManifestInvalidError('manifest mediaType must be a string');
    mediaType = json.mediaType;
    if (ct && isManifestMediaType(ct) && ct !== mediaType) throw new ManifestInvalidError(`manifest mediaType ${mediaType} does not match Content-Type ${ct}`);
  } else if (ct && isManifestMediaType(ct)) {
    mediaType = ct;
  } else if (json.manifests !== undefined) {
    mediaType = MediaType.OciIndex;
  } else if (json.config !== undefined || json.layers !== undefined) {
    mediaType = MediaType.OciManifest;
  } else {
    throw new ManifestInvalidError('cannot tell the manifest type: no mediaType, config or manifests');
  }
  const kind: 'image' | 'index' = mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList ? 'index' : 'image';
  if (!isManifestMediaType(mediaType)) throw new ManifestInvalidError(`unsupported manifest media type ${mediaType}`);
  const out: ParsedManifest = { mediaType, kind, schemaVersion: 2, layers: [], manifests: [] };
  if (kind === 'index') {
    if (!Array.isArray(json.manifests)) throw new ManifestInvalidError('an index needs a manifests array');
    out.manifests = descriptors(json.manifests, 'manifests');
  } else {
    if (json.config === undefined) throw new ManifestInvalidError('an image manifest needs a config descriptor');
    out.config = descriptor(json.config, 'config');
    out.layers = descriptors(json.layers, 'layers');
  }
  if (json.subject !== undefined && json.subject !== null) out.subject = descriptor(json.subject, 'subject');
  if (typeof json.artifactType === 'string') out.artifactType = json.artifactType;
  const ann = stringMap(json.annotations, 'manifest');
  if (ann) out.annotations = ann;
  return out;
}

/** Blobs an image manifest references: config and layers. */
export function blobDescriptors(m: ParsedManifest): Descriptor[] {
  return m.config ? [m.config, ...m.layers] : [...m.layers];
}

/** Manifests an index references. */
export function childManifests(m: ParsedManifest): Descriptor[] {
  return m.manifests;
}

export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/i.test(p))) {
    throw new TypeError(`invalid platform "${s}": expected os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function platformMatches(p: Platform | undefined, filter: Platform): boolean {
  if (!p) return false;
  if (p.os !== filter.os || p.architecture !== filter.architecture) return false;
  return filter.variant === undefined || p.variant === filter.variant;
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}
