/**
 * Which upstream a request is for, and where its content lives in the store. A closed world:
 * only configured upstreams are ever contacted; `?ns=` and a host in the path are keys into the
 * configuration, never addresses to dial.
 *
 *   request                                   store name              upstream, repository
 *   /v2/alpine/…            (registry-mirrors) library/alpine          default, library/alpine
 *   /v2/library/alpine/…?ns=docker.io          library/alpine          docker.io, library/alpine
 *   /v2/org/app/…?ns=ghcr.io                   ghcr.io/org/app         ghcr.io, org/app
 *   /v2/ghcr.io/org/app/…                      ghcr.io/org/app         ghcr.io, org/app
 *
 * The default upstream's images are stored under their own name and the others' under
 * `<host>/<name>`, so the same store answers both forms offline.
 */
import picomatch from 'picomatch';
import { DeniedError } from '../oci/errors.js';
import { dockerHubName, normalizeRegistryHost, parseRepositoryName } from '../oci/reference.js';
import type { Target } from './registry.js';

export interface Route<U> {
  /** Where the repository lives in the store. */
  storeName: string;
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

  /**
   * `defaultRegistry` is the registry that names without one belong to (docker.io by default).
   * `localNames` (push.repositories) are globs of names that belong to this registry alone:
   * they accept pushes and are served from the store, never looked up upstream.
   */
  constructor(upstreams: ReadonlyMap<string, U>, readonly defaultRegistry: string, readonly localNames: readonly string[] = []) {
    this.#upstreams = new Map([...upstreams].map(([k, v]) => [normalizeRegistryHost(k), v]));
    const match = localNames.length > 0 ? picomatch([...localNames], { dot: true }) : () => false;
    this.#local = (name) => match(name);
  }

  isLocal(name: string): boolean {
    return this.#local(name);
  }

  /**
   * Where a push to `name` is stored: under the name as written (as registry:2 does). With
   * upstreams configured, only local names accept pushes; a mirrored name is refused, saying how
   * to allow it.
   */
  pushName(name: string): string {
    const stored = parseRepositoryName(name);
    if (!this.hasUpstreams || this.#local(stored)) return stored;
    const r = this.route({ name: stored });
    const from = r.upstream ? `mirrored from an upstream` : 'not a local name';
    throw new DeniedError(
      `pushing to ${stored} is not allowed: it is ${from}; list it (or a pattern such as "${stored.split('/')[0]}/**") under push.repositories in mirror.yml to accept pushes`,
    );
  }

  get hasUpstreams(): boolean {
    return this.#upstreams.size > 0;
  }

  upstream(host: string): U | undefined {
    return this.#upstreams.get(normalizeRegistryHost(host));
  }

  route(target: Target): Route<U> {
    if ((target.ns === undefined || target.ns === '') && this.#local(target.name)) {
      return { storeName: parseRepositoryName(target.name), upstreamRepository: target.name };
    }
    let registry = this.defaultRegistry;
    let repository = target.name;
    if (target.ns !== undefined && target.ns !== '') {
      registry = normalizeRegistryHost(target.ns);
    } else {
      const slash = target.name.indexOf('/');
      const first = slash > 0 ? target.name.slice(0, slash) : '';
      if (first && looksLikeHost(first)) {
        registry = normalizeRegistryHost(first);
        repository = target.name.slice(slash + 1);
      }
    }
    if (registry === 'docker.io') repository = dockerHubName(repository);
    const isDefault = registry === normalizeRegistryHost(this.defaultRegistry);
    const storeName = parseRepositoryName(isDefault ? repository : `${registry}/${repository}`);
    const upstream = this.#upstreams.get(registry);
    if (upstream) return { storeName, upstream, upstreamRepository: repository };
    // With no upstream at all (an offline site) every name is local: a miss is a plain 404.
    const refusal = this.hasUpstreams ? `registry ${registry} is not configured as an upstream of this mirror` : undefined;
    return { storeName, upstreamRepository: repository, refusal };
  }
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
