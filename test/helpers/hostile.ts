/**
 * Parties airlock must not trust: an "internal" service an upstream may point a redirect at (a
 * metadata endpoint, an admin API), and an attacker's token realm that collects whatever
 * credentials reach it. Both are plain node:http servers that record every request and answer
 * with a body a test can look for in what clients received.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
}

export interface RecordingServer {
  url: string;
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

/**
 * A server on `host` (default 127.0.0.1; any 127.0.0.0/8 address is loopback on Linux) that
 * answers every request with `status` and `body` as JSON.
 */
export async function startRecordingServer(opts: { host?: string; status?: number; body: unknown }): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    res.writeHead(opts.status ?? 200, { 'content-type': 'application/json' }).end(JSON.stringify(opts.body));
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}`,
    requests,
    stop: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** An internal service whose answer must never reach a client of the mirror. */
export function startInternalService(host = '127.0.0.2'): Promise<RecordingServer> {
  return startRecordingServer({ host, body: { name: 'internal', tags: ['internal-secret'], secret: 'internal-secret' } });
}

/** A token realm run by an attacker: hands out a token to whoever asks, and records who asked with what. */
export function startAttackerRealm(): Promise<RecordingServer> {
  return startRecordingServer({ body: { token: 'attacker-token', access_token: 'attacker-token', expires_in: 300 } });
}

export interface FloodServer {
  url: string;
  /** Per request: the path, and how many body bytes were written before the connection closed. */
  floods: Array<{ path: string; written: number }>;
  stop(): Promise<void>;
}

/**
 * A server that answers as a registry or a token realm could, but with a body without end:
 * `flood(path)` gives the status and how many bytes of JSON-ish filler to send (streamed with
 * backpressure, so `written` is what the reader actually took), or undefined for a plain 200 `{}`.
 */
export async function startFloodServer(flood: (path: string) => { status: number; bytes: number } | undefined): Promise<FloodServer> {
  const floods: FloodServer['floods'] = [];
  const server = http.createServer((req, res) => {
    const f = flood(req.url ?? '/');
    if (!f) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const record = { path: req.url ?? '/', written: 0 };
    floods.push(record);
    res.writeHead(f.status, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const pump = (): void => {
      while (record.written < f.bytes && !res.destroyed) {
        record.written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    res.write('{"token":"');
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    floods,
    stop: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
