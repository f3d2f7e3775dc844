/**
 * The fleet port: what other replicas on the same bucket read a fill from (mirror/fleet.ts).
 * One route, GET /fills/<digest> with an optional `Range: bytes=<offset>-`: this replica's fill
 * of the blob as it grows, or the stored blob. It serves any blob, so every request must carry
 * fleet.secret (required by the configuration); keep the port on the replicas' own network too.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../logging/logger.js';
import type { PullThrough } from '../mirror/pull-through.js';
import { Digest } from '../oci/digest.js';
import { blobBody } from './blob-body.js';
import { noSchemaCompilers } from './no-schemas.js';

function sameSecret(given: string | undefined, secret: string): boolean {
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(`Bearer ${secret}`);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function buildFleetApp(registry: PullThrough, secret: string, logger: Logger): FastifyInstance {
  const app = Fastify({ logger: false, schemaController: noSchemaCompilers });
  app.get<{ Params: { digest: string } }>('/fills/:digest', async (req, reply) => {
    if (!sameSecret(req.headers.authorization, secret)) return reply.code(401).send({ error: 'fleet secret required' });
    const d = Digest.tryParse(req.params.digest);
    if (!d) return reply.code(400).send({ error: 'not a digest' });
    const m = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    const offset = m ? Number(m[1]) : 0;
    const r = await registry.peerFill(d, offset);
    if (!r) return reply.code(404).send({ error: 'no fill and no blob here' });
    const body = blobBody(r.body);
    req.raw.on('close', () => {
      if (!reply.raw.writableFinished) body.destroy();
    });
    body.on('error', (e) => logger.debug({ digest: d.toString(), err: e.message }, 'fleet stream ended early'));
    return reply
      .code(offset > 0 ? 206 : 200)
      .header('x-airlock-blob-size', String(r.size))
      .header('content-length', String(r.size - offset))
      .header('content-type', 'application/octet-stream')
      .send(body);
  });
  return app;
}
