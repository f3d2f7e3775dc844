/**
 * airlock loads undici's dispatchers through deep paths (src/runtime/undici.ts) instead of its
 * index, which would also load fetch, WebSocket, the caches and the mocks. This checks that the
 * paths still resolve after an upgrade and that requests work through them; serve-footprint.test.ts
 * checks that nothing in the serve path loads the index after all.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, Pool, requestUrl } from '../../../src/runtime/undici.js';

let server: http.Server;
let origin: string;
const seen: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'text/plain', 'x-echo-range': req.headers.range ?? '' }).end(`hello ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe('undici without its index', () => {
  it('a Pool sends requests through the mixed-in request()', async () => {
    const pool = new Pool(origin, { connections: 2 });
    try {
      const res = await pool.request({ path: '/v2/?a=1', method: 'GET' });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('hello /v2/?a=1');
    } finally {
      await pool.close();
    }
  });

  it('requestUrl sends an absolute URL (path and query kept as given) through an Agent', async () => {
    const agent = new Agent();
    try {
      const res = await requestUrl(agent, `${origin}/fills/sha256%3Aab?X-Amz-Signature=a%2Fb`, { headers: { range: 'bytes=5-' } });
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-echo-range']).toBe('bytes=5-');
      expect(await res.body.text()).toBe('hello /fills/sha256%3Aab?X-Amz-Signature=a%2Fb');
      expect(seen).toContain('GET /fills/sha256%3Aab?X-Amz-Signature=a%2Fb');
    } finally {
      await agent.close();
    }
  });
});
