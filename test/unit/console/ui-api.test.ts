/**
 * The console API plugin on its own, with a fake service and fake logins: the event stream's
 * bound and its clean-up when clients go away, and the permission checks in front of the service.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { sendError } from '../../../src/http/error-handler.js';
import type { ConsoleService, Fill } from '../../../src/http/console-service.js';
import { uiApi } from '../../../src/http/plugins/ui-api.js';

const fill: Fill = { id: 'u/sha256:1', repository: 'open/x', digest: 'sha256:1', size: 10, received: 5, startedAt: 1, upstream: 'u' };
const hiddenFill: Fill = { ...fill, id: 'u/sha256:2', repository: 'hidden/x' };

function fakeService(calls: string[]): ConsoleService {
  const no = () => {
    throw new Error('not expected');
  };
  return {
    overview: no, repositories: no, image: no, prefetchStatus: no, storeNameOf: no, prefetchOne: no, prefetchAll: () => true,
    maintenance: no, gc: no, verify: () => true, pin: no, unpin: no,
    fills: (may) => [fill, hiddenFill].filter((f) => may(f.repository)),
    repository: async (name) => {
      calls.push(`repository ${name}`);
      return undefined;
    },
    deleteEnabled: () => true,
    deleteImage: async (name, ref) => {
      calls.push(`delete ${name} ${ref}`);
    },
  };
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(calls: string[], maxEventClients = 2, readOnly?: string): Promise<string> {
  app = Fastify();
  app.setErrorHandler((err, req, reply) => sendError(err, req, reply));
  app.decorate('auth', {
    identify: async () => undefined,
    mayPull: (_r: unknown, name: string) => !name.startsWith('hidden/'),
    mayDelete: (_r: unknown, name: string) => name.startsWith('open/'),
    mayAdminister: () => false,
  } as never);
  app.register(uiApi, { prefix: '/ui/api', service: fakeService(calls), maxEventClients, ...(readOnly ? { readOnly } : {}) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}/ui/api`;
}

async function firstEvent(body: AsyncIterable<unknown>): Promise<string> {
  let text = '';
  for await (const c of body) {
    text += String(c);
    if (text.includes('\n\ndata') || /data: .*\n\n/.test(text)) break;
  }
  return text;
}

describe('console API plugin', () => {
  it('streams fills of visible repositories only, and bounds the streams open at once', async () => {
    const base = await start([]);
    const one = await request(`${base}/events`);
    expect(one.statusCode).toBe(200);
    expect(one.headers['content-type']).toContain('text/event-stream');
    // Leaving the loop destroys the body: the client goes away.
    const text = await firstEvent(one.body);
    expect(text).toContain('event: fills');
    expect(text).toContain('open/x');
    expect(text).not.toContain('hidden/x');
    const open = async () => {
      for (let i = 0; i < 50; i++) {
        const r = await request(`${base}/events`);
        if (r.statusCode === 200) return r;
        await r.body.dump();
        await new Promise((x) => setTimeout(x, 20));
      }
      throw new Error('no room for a stream');
    };
    // The place of the client that went away is free again.
    const two = await open();
    const three = await open();
    const four = await request(`${base}/events`);
    expect(four.statusCode).toBe(429);
    expect(((await four.body.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('TOOMANYREQUESTS');
    two.body.destroy();
    const five = await open();
    expect(five.statusCode).toBe(200);
    // Closing the app ends the streams still open (it would wait for them otherwise).
    await app!.close();
    app = undefined;
    await three.body.dump();
    await five.body.dump();
  });

  it('a hidden repository is 404 before the service is asked; a delete needs the right', async () => {
    const calls: string[] = [];
    const base = await start(calls);
    const hidden = await request(`${base}/repository?name=hidden/x`);
    expect(hidden.statusCode).toBe(404);
    await hidden.body.dump();
    expect(calls).toEqual([]);
    const denied = await request(`${base}/image?name=other/x&ref=v1`, { method: 'DELETE' });
    expect(denied.statusCode).toBe(403);
    await denied.body.dump();
    const hiddenDelete = await request(`${base}/image?name=hidden/x&ref=v1`, { method: 'DELETE' });
    expect(hiddenDelete.statusCode).toBe(404);
    await hiddenDelete.body.dump();
    const ok = await request(`${base}/image?name=open/x&ref=v1`, { method: 'DELETE' });
    expect(ok.statusCode).toBe(202);
    await ok.body.dump();
    expect(calls).toEqual(['delete open/x v1']);
    const run = await request(`${base}/prefetch/run`, { method: 'POST' });
    expect(run.statusCode).toBe(403);
    await run.body.dump();
    const bad = await request(`${base}/repositories?limit=ten`);
    expect(bad.statusCode).toBe(400);
    await bad.body.dump();
  });

  it('a read-only store refuses every write with 405 before the service is asked', async () => {
    const calls: string[] = [];
    const base = await start(calls, 2, 'the store is read-only');
    for (const [method, p, body] of [['DELETE', '/image?name=open/x&ref=v1'], ['POST', '/pin', '{"name":"open/x","digest":"sha256:1"}'], ['POST', '/prefetch', '{"image":"open/x:1"}']] as const) {
      const r = await request(`${base}${p}`, { method, ...(body ? { body, headers: { 'content-type': 'application/json' } } : {}) });
      const j = (await r.body.json()) as { errors: Array<{ code: string; message: string }> };
      expect([p, r.statusCode, j.errors[0]!.code]).toEqual([p, 405, 'UNSUPPORTED']);
    }
    expect(calls).toEqual([]);
  });
});

