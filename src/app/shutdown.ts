import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../logging/audit-log.js';
import type { Logger } from '../logging/logger.js';
import type { PullThrough } from '../mirror/pull-through.js';
import type { AccessTimes } from '../storage/access-times.js';
import type { Store } from '../storage/store.js';
import type { PeerClient } from '../upstream/peer-client.js';
import type { UpstreamClient } from '../upstream/client.js';

export interface ShutdownParts {
  app: FastifyInstance;
  metricsApp?: FastifyInstance;
  fleetApp?: FastifyInstance;
  /** The schedules' stop functions. */
  stops: Array<() => Promise<void>>;
  /** Called once the registry port is closed (cancels timers that would start work). */
  afterClose?: () => void;
  accessTimes: AccessTimes;
  registry: PullThrough;
  upstreams: Map<string, UpstreamClient>;
  peers?: PeerClient;
  audit?: AuditLog;
  store: Store;
  logger: Logger;
}

/**
 * Stops accepting and lets in-flight responses finish (serve bounds the wait), then stops the
 * fills nobody follows any more (their temp files are removed), and closes what is left in the
 * order that lets each part finish its last writes.
 */
export async function shutdown(p: ShutdownParts): Promise<void> {
  const stopping = Promise.all(p.stops.map((s) => s()));
  // close() ends the connections idle at that moment; one whose response is just finishing
  // becomes idle a moment later and would otherwise linger for the keep-alive timeout.
  const idle = setInterval(() => p.app.server.closeIdleConnections(), 50);
  try {
    await p.app.close();
  } finally {
    clearInterval(idle);
  }
  p.afterClose?.();
  await p.metricsApp?.close();
  await p.accessTimes.flush().catch((e: unknown) => p.logger.warn({ err: e }, 'could not save access times'));
  await p.registry.abortFills();
  if (p.fleetApp) {
    // Other replicas following a fill of ours resume elsewhere (their leases take over).
    const closing = p.fleetApp.close();
    p.fleetApp.server.closeAllConnections();
    await closing;
  }
  await stopping;
  await Promise.all([...p.upstreams.values()].map((u) => u.close()));
  await p.peers?.close();
  await p.audit?.close();
  p.store.driver.close?.();
}
