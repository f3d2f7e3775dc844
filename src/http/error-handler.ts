/**
 * Maps every error to OCI error JSON (distribution-spec "Error Codes"):
 * `{"errors":[{"code","message","detail"}]}` with the table's status. Domain errors carry no
 * HTTP; this is the one place that knows statuses. 5xx messages are not echoed to clients, and
 * each error is logged once, here.
 */
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_TABLE, MirrorError, errorBody, type ErrorCode } from '../oci/errors.js';

/** Wire codes for our internal ones: clients know the spec's codes and Docker's UNAVAILABLE. */
const WIRE_CODE: Partial<Record<ErrorCode, string>> = {
  UPSTREAM_UNAVAILABLE: 'UNAVAILABLE',
  UPSTREAM_TIMEOUT: 'UNAVAILABLE',
  UPSTREAM_BAD_RESPONSE: 'UNAVAILABLE',
  INTERNAL: 'UNKNOWN',
};

export interface ErrorAnswer {
  status: number;
  body: ReturnType<typeof errorBody>;
  headers?: Record<string, string>;
}

export function answerFor(err: unknown): ErrorAnswer {
  if (err instanceof MirrorError) {
    const entry = ERROR_TABLE[err.code];
    const code = WIRE_CODE[err.code] ?? err.code;
    const message = entry.status >= 500 ? entry.message : err.message;
    const detail = entry.status >= 500 ? undefined : err.detail;
    return { status: entry.status, body: errorBody(code, message, detail), headers: err.headers };
  }
  if (isStorageFull(err)) {
    return { status: 507, body: errorBody('UNKNOWN', 'the registry\'s storage is full; nothing was stored') };
  }
  const fe = err as Partial<FastifyError>;
  const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
  if (status === 500) return { status, body: errorBody('UNKNOWN', ERROR_TABLE.INTERNAL.message) };
  if (status === 413) return { status, body: errorBody('SIZE_INVALID', fe.message ?? 'request body too large') };
  return { status, body: errorBody('UNSUPPORTED', fe.message ?? 'bad request') };
}

export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const a = answerFor(err);
  if (a.status >= 500) logFailure(err, request.log);
  else request.log.debug({ err: { message: (err as Error).message, code: (err as MirrorError).code } }, 'request refused');
  if (reply.sent || reply.raw.headersSent) {
    // Once headers are out, the only honest signal left is a broken connection.
    reply.raw.destroy(err instanceof Error ? err : undefined);
    return;
  }
  if (a.headers) reply.headers(a.headers);
  const drained = discardBody(request, reply);
  const send = () => reply.code(a.status).type('application/json; charset=utf-8').send(a.body);
  if (drained) void drained.then(send);
  else send();
}

/**
 * An upstream that is down, slow or sends bad bytes is expected on a mirror: one warn line with
 * its code and message (the message names the upstream and the cause); the stack only at debug.
 * Anything else is our own failure: error, with the stack.
 */
function logFailure(err: unknown, log: FastifyBaseLogger): void {
  if (err instanceof MirrorError && err.code.startsWith('UPSTREAM_')) {
    if (log.level === 'debug' || log.level === 'trace') log.warn({ err }, 'request failed: upstream');
    else log.warn({ code: err.code, err: err.message }, 'request failed: upstream');
    return;
  }
  log.error({ err }, 'request failed');
}

/** Most bytes of a refused request's body read and dropped before the connection is cut. */
const DISCARD_LIMIT = 8 * 2 ** 20;
/** Longest wait for such a body before the answer goes anyway. */
const DRAIN_WAIT_MS = 10_000;

/**
 * A refused request whose body was not read (an upload refused before its bytes, a login
 * refused before the body parser ran) would hold its connection open forever, and closing it
 * with unread bytes makes the kernel send a reset that can destroy the answer. So the rest of
 * the body is read and dropped (up to a bound, then the connection is cut) and the connection
 * is closed after the answer.
 */
function discardBody(request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined {
  const raw = request.raw;
  if (raw.complete || raw.readableEnded) return undefined;
  if (raw.destroyed) {
    // Its unread bytes can never be parsed as a next request: the connection ends with this answer.
    reply.header('connection', 'close');
    reply.raw.once('finish', () => raw.socket?.end());
    return undefined;
  }
  reply.header('connection', 'close');
  let seen = 0;
  raw.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > DISCARD_LIMIT) raw.socket?.destroy();
  });
  raw.on('error', () => undefined);
  raw.resume();
  // A body within the bound is read to its end before the answer, so the client, still sending,
  // reads the answer instead of a reset (which Node's close after a `connection: close` answer sends).
  const declared = Number(request.headers['content-length']);
  if (!(declared > 0 && declared <= DISCARD_LIMIT)) return undefined;
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, DRAIN_WAIT_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    raw.once('end', done);
    raw.once('close', done);
  });
}

/** ENOSPC or EDQUOT anywhere in the cause chain. */
function isStorageFull(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 8; e = e.cause as typeof e, i++) {
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return true;
  }
  return false;
}
