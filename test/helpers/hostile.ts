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
