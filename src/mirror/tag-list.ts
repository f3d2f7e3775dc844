import type { Logger } from '../logging/logger.js';
import { NameUnknownError } from '../oci/errors.js';
import { paginate, type PageRequest } from '../oci/pagination.js';
import type { Store } from '../storage/store.js';
import type { UpstreamRoute } from './mirror-options.js';
import type { Page } from './image-source.js';
import { refusedError } from './router.js';
import { isUpstreamFailure } from './upstream-failure.js';

/**
 * A tags/list page: the stored tags and the upstream's, merged and sorted; only the stored ones
 * while the upstream fails, so a disconnected site still lists what it holds.
 */
export async function tagListPage(store: Store, log: Logger, route: UpstreamRoute, page: PageRequest): Promise<Page> {
  const local = await store.links.listTags(route.storeName);
  let remote: string[] | undefined;
  if (route.upstream) {
    try {
      remote = await route.upstream.listTags(route.upstreamRepository);
    } catch (e) {
      if (!local || !isUpstreamFailure(e)) throw e;
      log.warn({ repository: route.storeName, err: (e as Error).message }, 'upstream unavailable; listing cached tags');
    }
  }
  if (!local && !remote) {
    if (route.refusal) throw refusedError(route.refusal);
    throw new NameUnknownError('repository name not known to registry', { detail: { name: route.storeName } });
  }
  const all = [...new Set([...(local ?? []), ...(remote ?? [])])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // Without n, every tag, as Distribution answers (and scripts that ignore Link expect).
  return paginate(all, page, Number.MAX_SAFE_INTEGER);
}
