import type { FastifyInstance, FastifyRequest } from 'fastify';

export interface Readiness {
  ready: boolean;
  store: string;
  upstreams: Record<string, string>;
}

/**
 * /readyz for anyone who can reach the registry port: ready or not, and each upstream's state in
 * one word. Addresses and error text (which name internal hosts) only for logged-in users and on
 * metrics.listen.
 */
export function redactReadiness(r: Readiness): Readiness {
  const word = (v: string) => v.split(':')[0] as string;
  return { ready: r.ready, store: word(r.store), upstreams: Object.fromEntries(Object.entries(r.upstreams).map(([k, v]) => [k, word(v)])) };
}

/** GET /readyz on an app; `full` decides per request whether details are shown. */
export function addReadinessRoute(app: FastifyInstance, readiness: (() => Promise<Readiness>) | undefined, full: (request: FastifyRequest) => Promise<boolean>): void {
  app.get('/readyz', async (request, reply) => {
    request.endpoint = 'health';
    const r: Readiness = readiness ? await readiness() : { ready: true, store: 'writable', upstreams: {} };
    // An unreachable upstream does not fail readiness: a disconnected site serves by design.
    reply.code(r.ready ? 200 : 503).header('cache-control', 'no-store');
    return (await full(request)) ? r : redactReadiness(r);
  });
}
