/**
 * Allow and deny lists per upstream (upstreams.<host>.allow / .deny, README "Allow and deny
 * lists"): which of an upstream's repositories and tags airlock fetches and serves. Pure.
 *
 * Rules match the repository's name on that upstream, the name airlock would ask it for
 * (`library/nginx` under docker.io, `org/app` under ghcr.io), which the router derives once from
 * whatever spelling a client used; so `nginx`, `docker.io/library/nginx` and
 * `library/nginx?ns=docker.io` meet the same rules. A rule may add a tag pattern after `:` (a glob
 * or a semver range, as prefetch's tags: tag-pattern.ts).
 * - Deny wins: anything a deny rule matches is denied, whatever the allow list says.
 * - With an allow list (even an empty one), anything no allow rule matches is denied.
 * - Tag patterns judge tag pulls only. A digest, a blob or tags/list names no tag: a deny rule
 *   with a tag does not deny them, an allow rule with a tag allows them (its repository is
 *   allowed for some tags). Content is denied by digest only by repository rules (no tag).
 */
import picomatch from 'picomatch';
import { parsePolicyRule, type Config, type PolicyConfig } from '../config/schema.js';
import { normalizeRegistryHost } from '../oci/reference.js';
import { selectTags } from '../oci/tag-pattern.js';
import type { Router } from './router.js';

export type PolicyMode = PolicyConfig['mode'];

/** What the lists say about one request, when it is denied. */
export interface Denial {
  /** The upstream's key in mirror.yml (docker.io). */
  upstream: string;
  /** The repository on that upstream (library/nginx). */
  repository: string;
  tag?: string;
  list: 'allow' | 'deny';
  /** The deny rule that matched (an allow-list denial has no single rule). */
  rule?: string;
  /** One line naming the upstream, the repository (and tag) and the rule or list. */
  message: string;
}

interface Rule {
  text: string;
  repository: (name: string) => boolean;
  tag?: (tag: string) => boolean;
}

interface Lists {
  key: string;
  allow?: Rule[];
  deny: Rule[];
}

function compile(host: string, text: string): Rule {
  const { repository, tag } = parsePolicyRule(host, text);
  const matchRepository = picomatch(repository, { dot: true });
  // The same matching as prefetch's tag selection (globs, semver ranges).
  return { text, repository: (name) => matchRepository(name), tag: tag === undefined ? undefined : (t) => selectTags([t], [tag]).length > 0 };
}

export class UpstreamPolicy {
  readonly #lists = new Map<string, Lists>();

  /** `lists` by upstream key as written in mirror.yml; invalid rules throw (checkConfig refuses them first). */
  constructor(lists: Readonly<Record<string, { allow?: readonly string[]; deny?: readonly string[] }>>, readonly mode: PolicyMode = 'enforce') {
    for (const [key, l] of Object.entries(lists)) {
      const deny = (l.deny ?? []).map((r) => compile(key, r));
      const allow = l.allow?.map((r) => compile(key, r));
      if (deny.length > 0 || allow !== undefined) this.#lists.set(normalizeRegistryHost(key), { key, deny, allow });
    }
  }

  static fromConfig(config: Pick<Config, 'upstreams' | 'policy'>): UpstreamPolicy {
    return new UpstreamPolicy(config.upstreams, config.policy.mode);
  }

  /** Whether any upstream has a list. */
  get empty(): boolean {
    return this.#lists.size === 0;
  }

  /**
   * The denial of `repository` on `upstream` (its key, or any alias of the host), by tag when the
   * request names one; undefined when the lists let it through.
   */
  check(upstream: string, repository: string, tag?: string): Denial | undefined {
    const l = this.#lists.get(normalizeRegistryHost(upstream));
    if (!l) return undefined;
    const what = tag === undefined ? repository : `${repository}:${tag}`;
    const base = { upstream: l.key, repository, ...(tag === undefined ? {} : { tag }) };
    for (const r of l.deny) {
      if (r.repository(repository) && (r.tag === undefined || (tag !== undefined && r.tag(tag)))) {
        return { ...base, list: 'deny', rule: r.text, message: `${l.key} ${what} is denied by upstreams.${l.key}.deny "${r.text}"` };
      }
    }
    if (l.allow && !l.allow.some((r) => r.repository(repository) && (r.tag === undefined || tag === undefined || r.tag(tag)))) {
      return { ...base, list: 'allow', message: `${l.key} ${what} is denied: no entry of upstreams.${l.key}.allow matches it` };
    }
    return undefined;
  }
}

/**
 * The lists applied to stored names (an import's), judged as a request for that name would be:
 * routed (router.ts) to its upstream and the repository there. Local names (push.repositories)
 * and names of registries that are not configured have no upstream and are not subject.
 */
export function storedNameJudge(policy: UpstreamPolicy, router: Router<string>): (storeName: string, tag?: string) => Denial | undefined {
  return (storeName, tag) => {
    let route;
    try {
      route = router.route({ name: storeName });
    } catch {
      return undefined;
    }
    return route.upstream === undefined ? undefined : policy.check(route.upstream, route.upstreamRepository, tag);
  };
}
