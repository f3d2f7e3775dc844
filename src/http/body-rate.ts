/**
 * A floor under the rate of request bodies (http.minBodyRate over http.bodyRateWindow): a
 * client that trickles a PATCH one byte at a time would otherwise hold its connection and its
 * upload session for ever, and an idle timeout never fires while bytes keep coming. Measured on
 * the socket (bytesRead), so watching never changes how the body is consumed.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export interface BodyRateOptions {
  /** Bytes per second, averaged over `windowMs`; 0 turns the check off. */
  minRate: number;
  windowMs: number;
}

interface Watched {
  request: FastifyRequest;
  response: ServerResponse;
  socket: Socket;
  /** bytesRead at the start of the current window, and when it started. */
  mark: number;
  since: number;
}

function hasBody(request: FastifyRequest): boolean {
  const cl = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

export function watchBodyRate(app: FastifyInstance, opts: BodyRateOptions): void {
  if (opts.minRate <= 0) return;
  const watched = new Set<Watched>();
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    const now = Date.now();
    for (const w of watched) {
      const raw = w.request.raw;
      if (raw.complete || raw.readableEnded || w.socket.destroyed) {
        watched.delete(w);
        continue;
      }
      if (now - w.since < opts.windowMs) continue;
      const got = w.socket.bytesRead - w.mark;
      if (got >= (opts.minRate * (now - w.since)) / 1000) {
        w.mark = w.socket.bytesRead;
        w.since = now;
        continue;
      }
      watched.delete(w);
      w.request.log.warn({ method: w.request.method, url: w.request.url, remote: w.request.ip, bytes: got, seconds: Math.round((now - w.since) / 1000) }, 'request body slower than http.minBodyRate; connection closed');
      // The handler may be waiting for the body: the answer goes straight to the socket, then
      // the connection ends, so the handler sees an aborted body and stores nothing.
      const body = JSON.stringify({ errors: [{ code: 'SIZE_INVALID', message: `the request body arrived slower than ${opts.minRate} bytes per second (http.minBodyRate); send it again` }] });
      if (!w.response.headersSent) {
        w.socket.end(`HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      }
      w.socket.destroySoon();
      raw.destroy();
    }
    if (watched.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  app.addHook('onRequest', (request, reply, done) => {
    const socket = request.raw.socket;
    if (hasBody(request) && socket) {
      watched.add({ request, response: reply.raw, socket, mark: socket.bytesRead, since: Date.now() });
      timer ??= setInterval(tick, Math.max(250, Math.min(5000, opts.windowMs / 4)));
      timer.unref();
    }
    done();
  });
  app.addHook('onClose', (_app, done) => {
    if (timer) clearInterval(timer);
    watched.clear();
    done();
  });
}
