import { access, constants } from 'node:fs/promises';
import type { ReadOnlyReason } from '../storage/read-only-driver.js';
import type { UpstreamClient } from '../upstream/client.js';

export interface ReadinessReport {
  ready: boolean;
  store: string;
  upstreams: Record<string, string>;
}

/**
 * /readyz: the store root writable (checked at most every 5 s), upstreams probed (every 10 s).
 * A store served read-only is ready while its root can be read (`read-only: <why>`).
 */
export function readinessCheck(root: string, upstreams: Map<string, UpstreamClient>, readOnly?: ReadOnlyReason): () => Promise<ReadinessReport> {
  let store: { at: number; value: string } | undefined;
  let probes: { at: number; value: Promise<Record<string, string>> } | undefined;
  return async () => {
    const now = Date.now();
    if (!store || now - store.at > 5000) {
      let value = readOnly ? `read-only: ${readOnly.why}` : 'writable';
      try {
        await access(root, readOnly ? constants.R_OK : constants.W_OK);
      } catch (e) {
        value = `${readOnly ? 'not readable' : 'not writable'}: ${(e as Error).message}`;
      }
      store = { at: now, value };
    }
    if (!probes || now - probes.at > 10_000) {
      probes = {
        at: now,
        value: Promise.all([...upstreams].map(async ([name, u]) => [name, await u.probe()] as const)).then((e) => Object.fromEntries(e)),
      };
    }
    return { ready: store.value === 'writable' || store.value.startsWith('read-only:'), store: store.value, upstreams: await probes.value };
  };
}
