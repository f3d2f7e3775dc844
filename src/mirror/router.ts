/**
 * What a client wrote -> the stored repository and its upstream. A closed world: only configured
 * upstreams are ever contacted; `?ns=` and a host in the path are keys into the configuration,
 * never addresses to dial. Every decision (access, push, delete, mount, referrers, locality) is
 * made on the stored name this returns, never on the spelling (README "Security model").
 *
 *   request                                   store name              upstream, repository
 *   /v2/alpine/…            (registry-mirrors) library/alpine          default, library/alpine
 *   /v2/library/alpine/…?ns=docker.io          library/alpine          docker.io, library/alpine
 *   /v2/docker.io/library/alpine/…             library/alpine          docker.io, library/alpine
 *   /v2/org/app/…?ns=ghcr.io                   ghcr.io/org/app         ghcr.io, org/app
 *   /v2/ghcr.io/org/app/…                      ghcr.io/org/app         ghcr.io, org/app
 *   /v2/ghcr.io/org/app/…?ns=docker.io         refused (NAME_INVALID): the path and ns disagree
 *
 * The default upstream's images are stored under their own name and the others' under
 * `<host>/<name>`, so the same store answers both forms offline. A local name (push.repositories,
 * or marked local because it holds pushed or imported content) never gets an upstream.
 */
import picomatch from 'picomatch';
import { DeniedError, NameInvalidError } from '../oci/errors.js';
import { dockerHubName, normalizeRegistryHost, parseRepositoryName } from '../oci/reference.js';
import type { ResolvedName, Target } from './image-source.js';

export interface Route<U> extends ResolvedName {
  /** The upstream to fill misses from; undefined when the name is served from the store only. */
  upstream?: U;
  /** The repository's name on the upstream. */
  upstreamRepository: string;
  /** Set when the request named a registry that is not configured: local content only. */
  refusal?: string;
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

export class Router<U> {
  readonly #upstreams: ReadonlyMap<string, U>;
  readonly #local: (name: string) => boolean;
  readonly #default: string;

  /**
   * `defaultRegistry` is the registry that names without one belong to (docker.io by default).
   * `localNames` (push.repositories) are globs of stored names that belong to this registry
   * alone: they accept pushes and are served from the store, never looked up upstream.
   */
  constructor(upstreams: ReadonlyMap<string, U>, readonly defaultRegistry: string, readonly localNames: readonly string[] = []) {
    this.#upstreams = new Map([...upstreams].map(([k, v]) => [normalizeRegistryHost(k), v]));
    this.#default = normalizeRegistryHost(defaultRegistry);
    const match = localNames.length > 0 ? picomatch([...localNames], { dot: true }) : () => false;
    this.#local = (name) => match(name);
  }

  /** Whether a stored name matches push.repositories. */
  isLocal(storeName: string): boolean {
    return this.#local(storeName);
  }

  get hasUpstreams(): boolean {
    return this.#upstreams.size > 0;
  }

  upstream(host: string): U | undefined {
    return this.#upstreams.get(normalizeRegistryHost(host));
  }

  /**
   * The stored name and upstream of a request, from the configuration alone (the registry adds
   * what the store knows: names marked local, names that exist as written).
   */
  route(target: Target): Route<U> {
    const ns = target.ns !== undefined && target.ns !== '' ? normalizeRegistryHost(target.ns) : undefined;
    const name = parseRepositoryName(target.name);
    const slash = name.indexOf('/');
    const first = slash > 0 && looksLikeHost(name.slice(0, slash)) ? normalizeRegistryHost(name.slice(0, slash)) : undefined;
    let registry = ns ?? first ?? this.#default;
    let repository = first !== undefined && (ns === undefined || first === ns) ? name.slice(slash + 1) : name;
    if (ns !== undefined && first !== undefined && first !== ns && (ns === this.#default || this.#upstreams.has(first) || first === this.#default)) {
      throw new NameInvalidError(`the path names registry ${first} but ns names ${ns}; send one of them`);
    }
    registry = normalizeRegistryHost(registry);
    if (registry === 'docker.io') repository = dockerHubName(repository);
    const isDefault = registry === this.#default;
    // The default upstream's names are stored unprefixed: one whose first component looks like
    // a host would land where that host's images live.
    const firstOfRepository = repository.split('/')[0] as string;
    if (isDefault && repository.includes('/') && looksLikeHost(firstOfRepository)) {
      throw new NameInvalidError(`${repository} is not a repository of ${registry}: a first component that looks like a registry host (${firstOfRepository}) names that registry`);
    }
    const storeName = parseRepositoryName(isDefault ? repository : `${registry}/${repository}`);
    if (!this.hasUpstreams || this.#local(storeName)) return { storeName, local: true, upstreamRepository: repository };
    const upstream = this.#upstreams.get(registry);
    if (upstream) return { storeName, local: false, upstream, upstreamRepository: repository };
    return { storeName, local: false, upstreamRepository: repository, refusal: `registry ${registry} is not configured as an upstream of this mirror` };
  }
}

/** The refusal of a push into a name that is not local. */
export function notPushable(storeName: string, mirrored: boolean): DeniedError {
  const why = mirrored ? 'mirrored from an upstream' : 'not a local name';
  return new DeniedError(
    `pushing to ${storeName} is not allowed: it is ${why}; list it (or a pattern such as "${storeName.split('/')[0]}/**") under push.repositories in mirror.yml to accept pushes`,
  );
}

/**
 * The request a client would send for an image reference: the default registry's images by
 * name alone (registry-mirrors), others with `ns` (hosts.toml), so they route and store alike.
 */
export function imageTarget(ref: { registry: string; repository: string }, defaultRegistry: string): Target {
  return normalizeRegistryHost(ref.registry) === normalizeRegistryHost(defaultRegistry) ? { name: ref.repository } : { name: ref.repository, ns: ref.registry };
}

/** The error for a miss on a registry that is not configured. */
export function refusedError(refusal: string): DeniedError {
  return new DeniedError(`${refusal}; add it under "upstreams:" in mirror.yml to mirror it`);
}
