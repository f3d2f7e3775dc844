/**
 * Repository names, tags and image references: the grammar of distribution/reference
 * (regexp.go) and distribution-spec "Pulling manifests" (`<name>` and `<reference>`).
 */
import { Digest } from './digest.js';
import { DigestInvalidError, ManifestUnknownError, NameInvalidError, TagInvalidError } from './errors.js';

export const MAX_NAME_LENGTH = 255;

/** path-component: [a-z0-9]+ joined by a separator: '.', '_', '__' or one or more '-'. */
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[\w][\w.-]{0,127}$/;

export function isValidRepositoryName(name: string): boolean {
  return typeof name === 'string' && name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

export function parseRepositoryName(name: string): string {
  if (isValidRepositoryName(name)) return name;
  const shown = JSON.stringify(String(name).slice(0, 80));
  let why = 'must be lowercase letters, digits and separators (. _ __ -) in /-separated components';
  if (typeof name !== 'string' || name.length === 0) why = 'is empty';
  else if (name.length > MAX_NAME_LENGTH) why = `is longer than ${MAX_NAME_LENGTH} characters`;
  else if (/[A-Z]/.test(name)) why = 'must be lowercase';
  else if (name.split('/').some((c) => c === '')) why = 'has an empty path component';
  else if (name.split('/').some((c) => c === '.' || c === '..')) why = 'has a relative path component';
  throw new NameInvalidError(`invalid repository name ${shown}: ${why}`, { detail: { name: String(name).slice(0, 300) } });
}

export function isValidTag(tag: string): boolean {
  return typeof tag === 'string' && TAG.test(tag);
}

export function parseTag(tag: string): string {
  if (isValidTag(tag)) return tag;
  throw new TagInvalidError(`invalid tag ${JSON.stringify(String(tag).slice(0, 140))}: a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with . or -`, {
    detail: { tag: String(tag).slice(0, 200) },
  });
}

export type ManifestReference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

/** The `<reference>` of a manifest URL: a digest if it has a ':', else a tag. */
export function parseManifestReference(ref: string): ManifestReference {
  if (ref.includes(':')) return { kind: 'digest', digest: Digest.parse(ref) };
  return { kind: 'tag', tag: parseTag(ref) };
}

/**
 * The `<reference>` of a manifest GET, HEAD or DELETE. One that is neither a valid tag nor a valid
 * digest names no manifest: 404 MANIFEST_UNKNOWN, as Distribution answers (its route does not
 * match) and the OCI conformance suite checks with `.INVALID_MANIFEST_NAME`. A PUT still gets
 * TAG_INVALID or DIGEST_INVALID from parseManifestReference: there the client has to fix its request.
 */
export function lookupManifestReference(ref: string): ManifestReference {
  try {
    return parseManifestReference(ref);
  } catch (e) {
    if (!(e instanceof TagInvalidError || e instanceof DigestInvalidError)) throw e;
    throw new ManifestUnknownError(`manifest unknown: ${JSON.stringify(String(ref).slice(0, 140))} is not a valid tag or digest`, {
      cause: e,
      detail: { reference: String(ref).slice(0, 200) },
    });
  }
}

export interface ImageReference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** A registry host as configured and as sent in containerd's `?ns=`: lowercase name, optional port. */
export const REGISTRY_HOST = /^[a-z0-9.-]+(:[0-9]+)?$/;

/** Lower-cased, with Docker Hub's aliases folded into `docker.io`. */
export function normalizeRegistryHost(host: string): string {
  const h = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(h) ? 'docker.io' : h;
}
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;

/** Docker Hub's single-component names live under library/. */
export function dockerHubName(repository: string): string {
  return repository.includes('/') ? repository : `library/${repository}`;
}

/**
 * Parses `alpine`, `alpine:3.20`, `ghcr.io/org/app:1.4`, `quay.io/x/y@sha256:…` and
 * `name:tag@digest` with Docker's normalisation: the first component is a registry when it has a
 * '.' or ':' or is `localhost`; Docker Hub's aliases become `docker.io`; a Docker Hub name with
 * one component gets `library/`; no tag and no digest means `latest`.
 */
export function parseImageReference(s: string, defaultRegistry = 'docker.io'): ImageReference {
  if (typeof s !== 'string' || s.length === 0 || s.length > 1024 || /\s/.test(s)) {
    throw new NameInvalidError(`invalid image reference ${JSON.stringify(String(s).slice(0, 80))}`);
  }
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = Digest.parse(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = parseTag(rest.slice(colon + 1));
    rest = rest.slice(0, colon);
  }
  let registry = defaultRegistry;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      if (!HOST.test(first)) throw new NameInvalidError(`invalid registry host "${first}" in ${JSON.stringify(s)}`);
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  registry = normalizeRegistryHost(registry);
  if (registry === 'docker.io') repository = dockerHubName(repository);
  parseRepositoryName(repository);
  if (!tag && !digest) tag = 'latest';
  const out: ImageReference = { registry, repository };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

export function formatImageReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest.toString()}` : ''}`;
}

