/**
 * How loaded images are named and judged, the same for `airlock load` (offline-jobs.ts) and an
 * archive uploaded over HTTP (archive-service.ts): routed as a pull of the reference would be,
 * with no upstream dialled, and the allow and deny lists applied to the stored names.
 */
import type { Config } from '../config/schema.js';
import type { ImportPolicy } from '../jobs/import-policy.js';
import { storedNameJudge, UpstreamPolicy } from '../mirror/policy.js';
import { imageTarget, Router } from '../mirror/router.js';
import { parseImageReference } from '../oci/reference.js';

/** The configuration's routing of names, without upstream clients. */
export function offlineRouter(config: Config): Router<string> {
  return new Router(new Map(Object.keys(config.upstreams).map((k) => [k, k])), config.defaultUpstream, config.push.repositories);
}

/** The loader's `route` and `policy` (undefined without allow or deny lists). */
export function loadNaming(config: Config, router: Router<string>, force: boolean): { route(label: string): { name: string; tag: string }; policy?: ImportPolicy } {
  const policy = UpstreamPolicy.fromConfig(config);
  const route = (label: string) => {
    const r = parseImageReference(label, config.defaultUpstream);
    return { name: router.route(imageTarget(r, config.defaultUpstream)).storeName, tag: r.tag ?? 'latest' };
  };
  return policy.empty ? { route } : { route, policy: { judge: storedNameJudge(policy, router), mode: policy.mode, force } };
}
