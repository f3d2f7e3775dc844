import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Metrics } from '../../metrics/metrics.js';

/**
 * GET /metrics on an app (the main one, or a separate listener's). `gate` runs first: on the
 * registry port it asks for a login when logins are configured.
 */
export function addMetricsRoute(app: FastifyInstance, metrics: Metrics, gate?: (request: FastifyRequest) => Promise<void>): void {
  app.get('/metrics', async (request, reply) => {
    await gate?.(request);
    reply.header('content-type', metrics.contentType()).header('cache-control', 'no-store');
    return metrics.text();
  });
}
