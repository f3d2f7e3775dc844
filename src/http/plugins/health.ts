/**
 * Liveness and readiness for load balancers, Docker's HEALTHCHECK and Kubernetes probes, and
 * /metrics unless it is served on metrics.listen. Needs the auth plugin (details and metrics
 * are for logged-in users when logins are configured).
 */
import type { FastifyPluginCallback } from 'fastify';
import type { Metrics } from '../../metrics/metrics.js';
import { addMetricsRoute } from '../routes/metrics.js';
import { addReadinessRoute, type Readiness } from '../routes/readiness.js';

export interface HealthOptions {
  /** /readyz: whether the store is writable, and each upstream's reachability. */
  readiness?: () => Promise<Readiness>;
  /** Served at /metrics when given. */
  metrics?: Metrics;
}

export const health: FastifyPluginCallback<HealthOptions> = function health(app, { readiness, metrics }, next) {
  app.get('/healthz', async (request, reply) => {
    request.endpoint = 'health';
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });
  addReadinessRoute(app, readiness, async (request) => (await app.auth.loggedIn(request)) !== undefined);
  if (metrics) addMetricsRoute(app, metrics, (request) => app.auth.requireLogin(request, 'log in to read the metrics (or serve them on metrics.listen)'));
  next();
};
