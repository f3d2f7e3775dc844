/** The options of the long-lived services, from the configuration (at start and on reload). */
import type { Config } from '../config/schema.js';
import type { PullThroughOptions } from '../mirror/pull-through.js';
import { UpstreamPolicy } from '../mirror/policy.js';
import type { PushOptions } from '../mirror/push-service.js';

export function registryOptions(config: Config): PullThroughOptions {
  return {
    tagTTL: config.cache.tagTTL,
    maxManifestSize: config.http.maxManifestSize,
    defaultPageSize: config.http.maxPageEntries,
    maxResumes: config.cache.maxResumes,
    redirect: config.storage.redirect,
    policy: UpstreamPolicy.fromConfig(config),
  };
}

export function pushOptions(config: Config): PushOptions {
  const { maxBlobSize, maxUploads, abandonAfter } = config.push;
  const limits = [maxBlobSize, config.storage.maxSize].filter((v): v is number => v !== undefined);
  return { deleteEnabled: config.storage.delete.enabled, abandonAfter, maxUploads, maxBlobSize: limits.length > 0 ? Math.min(...limits) : undefined };
}
