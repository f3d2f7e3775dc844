/**
 * For every request: the registry API version header, the request counters, and one log line
 * with the fields operators need (fastify's own request logging is off, see app.ts).
 */
import type { Metrics } from '../../metrics/metrics.js';
import type { V2Endpoint } from '../v2-path.js';
import { unencapsulated } from './unencapsulated.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** hit / miss / stale …, set by handlers for the request log line. */
    cacheOutcome?: string;
    /** Which endpoint served the request, for the log line and metrics. */
    endpoint?: V2Endpoint['kind'] | 'health' | 'archive' | 'ui';
  }
}

export interface RequestLogOptions {
  /** Counted per request when given. */
  metrics?: Metrics;
}

const API_VERSION = 'registry/2.0';

export const requestLog = unencapsulated<RequestLogOptions>(function requestLog(app, { metrics }, next) {
  app.decorateRequest('cacheOutcome', undefined);
  app.decorateRequest('endpoint', undefined);

  app.addHook('onRequest', (request, reply, done) => {
    reply.header('docker-distribution-api-version', API_VERSION);
    if (metrics) {
      // Counted when the connection is done with the response, whether it finished or the
      // client hung up once it had its bytes (onResponse misses the latter).
      reply.raw.once('close', () => {
        const endpoint = request.endpoint ?? 'other';
        metrics.requests.inc({ endpoint, method: request.method, status: String(reply.statusCode) });
        const len = reply.getHeader('content-length');
        if (request.method !== 'HEAD' && reply.statusCode !== 304) metrics.responseBytes.inc({ endpoint }, Number(len ?? 0));
      });
    }
    done();
  });

  app.addHook('onResponse', (request, reply, done) => {
    const len = reply.getHeader('content-length');

    request.log.info(
      {
        method: request.method,
        url: request.url,
        endpoint: request.endpoint,
        status: reply.statusCode,
        bytes: request.method === 'HEAD' || reply.statusCode === 304 ? 0 : Number(len ?? 0),
        ms: Math.round(reply.elapsedTime * 10) / 10,
        cache: request.cacheOutcome,
        remote: request.ip,
        user: request.user,
      },
      'request',
    );
    done();
  });
  next();
});
