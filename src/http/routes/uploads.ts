import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Digest } from '../../oci/digest.js';
import { BlobUploadInvalidError, DigestInvalidError, UnsupportedError } from '../../oci/errors.js';
import type { PushService } from '../../mirror/push-service.js';
import type { ResolvedName } from '../../mirror/image-source.js';

/** `<start>-<end>` (the spec's form; `bytes ` / `bytes=` prefixes tolerated), inclusive. */
export function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d+|\*))?\s*$/.exec(header);
  if (!m) throw new BlobUploadInvalidError(`Content-Range must be "<start>-<end>", got ${JSON.stringify(header.slice(0, 64))}`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new BlobUploadInvalidError(`Content-Range ${header} ends before it starts`);
  return { start, end };
}

function parseDigestParam(v: unknown, what: string): Digest {
  if (typeof v !== 'string' || v === '') throw new DigestInvalidError(`${what} query parameter is required`);
  try {
    return Digest.parse(v);
  } catch (e) {
    throw new DigestInvalidError(`${what}: ${(e as Error).message}`, { cause: e });
  }
}

function contentLength(request: FastifyRequest): number | undefined {
  const te = request.headers['transfer-encoding'];
  const cl = request.headers['content-length'];
  return te === undefined && cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : undefined;
}

const empty: AsyncIterable<Uint8Array> = { async *[Symbol.asyncIterator]() {} };

function body(request: FastifyRequest): AsyncIterable<Uint8Array> {
  const b = request.body as Readable | undefined;
  if (!b || typeof b.pipe !== 'function') return empty;
  // A consumer that stops early (disk full, a wrong length) must not destroy the request: its
  // remaining bytes are then read and dropped, so the error answer arrives and the connection
  // stays in a known state (see discardBody in error-handler.ts).
  return b.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
}

/** Locations name the stored repository, which resolves to itself whatever spelling opened the session. */
function uploadHeaders(reply: FastifyReply, name: string, id: string, size: number): FastifyReply {
  return reply
    .header('location', `/v2/${name}/blobs/uploads/${id}`)
    .header('docker-upload-uuid', id)
    .header('range', `0-${Math.max(0, size - 1)}`)
    .header('content-length', 0);
}

function created(reply: FastifyReply, name: string, d: Digest): void {
  reply.code(201).header('location', `/v2/${name}/blobs/${d.toString()}`).header('docker-content-digest', d.toString()).header('content-length', 0).send();
}

/**
 * /v2/<name>/blobs/uploads/[<id>] (distribution-spec "Pushing blobs"): POST opens a session,
 * or uploads a whole blob with ?digest=, or mounts one with ?mount=&from=; PATCH appends a chunk
 * (Content-Range checked, 416 out of order); PUT ?digest= completes; GET reports progress;
 * DELETE cancels.
 */
export async function upload(
  push: PushService,
  repository: ResolvedName,
  session: string | undefined,
  mountFrom: (name: string) => Promise<ResolvedName | undefined>,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const q = request.query as Record<string, unknown>;
  const name = repository.storeName;
  // Whose sessions these are, for push.maxUploads: the user, else the client's address.
  const owner = request.user ?? `address ${request.ip}`;
  {
    if (session === undefined) {
      if (request.method !== 'POST') throw new UnsupportedError(`${request.method} is not supported on ${request.url.split('?')[0]}`);
      if (q.mount !== undefined) {
        const d = parseDigestParam(q.mount, 'mount');
        if (typeof q.from === 'string' && q.from !== '') {
          const from = await mountFrom(q.from);
          if (from && (await push.mount(repository, d, from))) {
            request.cacheOutcome = 'mounted';
            return created(reply, name, d);
          }
        }
        // Not mountable: an ordinary upload session, as the spec asks.
      } else if (q.digest !== undefined) {
        const d = parseDigestParam(q.digest, 'digest');
        await push.putBlob(repository, d, body(request), contentLength(request), owner);
        return created(reply, name, d);
      }
      const s = await push.startUpload(repository, owner);
      uploadHeaders(reply.code(202), name, s.id, 0).send();
      return;
    }
    switch (request.method) {
      case 'GET':
      case 'HEAD': {
        const s = await push.status(repository, session);
        uploadHeaders(reply.code(204), name, s.id, s.size).send();
        return;
      }
      case 'PATCH': {
        const s = await push.append(repository, session, body(request), parseContentRange(request.headers['content-range']), contentLength(request));
        uploadHeaders(reply.code(202), name, s.id, s.size).send();
        return;
      }
      case 'PUT': {
        const d = parseDigestParam(q.digest, 'digest');
        const len = contentLength(request);
        const range = parseContentRange(request.headers['content-range']);
        const hasBody = (len !== undefined && len > 0) || request.headers['transfer-encoding'] !== undefined;
        await push.finish(repository, session, d, hasBody ? body(request) : undefined, range, len);
        return created(reply, name, d);
      }
      case 'DELETE':
        await push.cancel(repository, session);
        reply.code(204).send();
        return;
      default:
        throw new UnsupportedError(`${request.method} is not supported on an upload`);
    }
  }
}
