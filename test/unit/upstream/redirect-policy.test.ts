/**
 * The redirect policy as a unit: the upstream's address and the target decide. Every test
 * server is on loopback, where an upstream on loopback may redirect anywhere on loopback; so the
 * refusal of private targets is checked here with an upstream given by a public address
 * (203.0.113.10, a documentation address; nothing connects to it), against real DNS (localhost)
 * and a real server a refused connection must never reach.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../../src/runtime/undici.js';
import { RedirectPolicy, RedirectRefusedError } from '../../../src/upstream/redirect-policy.js';

const PUBLIC_UPSTREAM = 'https://203.0.113.10';
const u = (s: string) => new URL(s);

describe('RedirectPolicy.refusal', () => {
  const pub = new RedirectPolicy({ upstream: PUBLIC_UPSTREAM, allowPrivate: false });
  const hop = (to: string, blob = true, from = `${PUBLIC_UPSTREAM}/v2/x/blobs/sha256:0`) => pub.refusal({ from: u(from), to: u(to), blob });

  it('follows a blob to a public https CDN', async () => {
    expect(await hop('https://198.51.100.7/signed?sig=1')).toBeUndefined();
    expect(await hop('https://cdn.example/signed')).toBeUndefined();
  });

  it('follows nothing but blobs', async () => {
    expect(await hop('https://198.51.100.7/v2/x/tags/list', false)).toMatch(/only for blobs/);
  });

  it('never goes from https to http, or to another scheme', async () => {
    expect(await hop('http://198.51.100.7/signed')).toMatch(/https to http/);
    expect(await hop('file:///etc/passwd')).toMatch(/not http/);
    expect(await hop('http://198.51.100.7/b', true, 'http://203.0.113.10/v2/x/blobs/sha256:0')).toBeUndefined();
  });

  it('refuses loopback, link-local and private address literals when the upstream is public', async () => {
    for (const t of ['https://127.0.0.2/', 'https://[::1]/', 'https://[::ffff:127.0.0.1]/', 'https://0x7f.1/', 'https://169.254.169.254/latest/meta-data/', 'https://10.0.0.5/', 'https://[fd00::1]/']) {
      expect(await hop(t), t).toMatch(/address .* is a .* address and the upstream is not/);
    }
  });

  it('allows them when the upstream is on such an address itself, or allowPrivateRedirects is set', async () => {
    const internal = new RedirectPolicy({ upstream: 'http://10.0.0.4:5000', allowPrivate: false });
    expect(await internal.refusal({ from: u('http://10.0.0.4:5000/v2/x/blobs/sha256:0'), to: u('http://10.0.0.9:9000/bucket/key'), blob: true })).toBeUndefined();
    const allowed = new RedirectPolicy({ upstream: PUBLIC_UPSTREAM, allowPrivate: true });
    expect(await allowed.refusal({ from: u(`${PUBLIC_UPSTREAM}/v2/x/blobs/sha256:0`), to: u('https://10.0.0.9/bucket/key'), blob: true })).toBeUndefined();
  });

  it('knows an upstream named by a host name by its addresses (localhost is loopback)', async () => {
    expect(await new RedirectPolicy({ upstream: 'http://localhost:5000', allowPrivate: false }).upstreamIsPrivate()).toBe(true);
    expect(await new RedirectPolicy({ upstream: PUBLIC_UPSTREAM, allowPrivate: false }).upstreamIsPrivate()).toBe(false);
    const named = new RedirectPolicy({ upstream: 'https://registry.example', allowPrivate: false, resolve: () => Promise.resolve(['198.51.100.1']) });
    expect(await named.upstreamIsPrivate()).toBe(false);
    const failing = new RedirectPolicy({ upstream: 'https://registry.example', allowPrivate: false, resolve: () => Promise.reject(new Error('no DNS')) });
    expect(await failing.upstreamIsPrivate()).toBe(false);
  });
});

describe('RedirectPolicy.lookup on a real connection', () => {
  let server: http.Server;
  let port = 0;
  let connections = 0;
  beforeAll(async () => {
    server = http.createServer((_req, res) => res.end('internal answer'));
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('a host name that resolves to loopback is refused before any connection when the upstream is public', async () => {
    const policy = new RedirectPolicy({ upstream: PUBLIC_UPSTREAM, allowPrivate: false });
    const agent = new Agent({ connect: { lookup: policy.lookup } });
    try {
      const before = connections;
      const err = await agent.request({ origin: `http://localhost:${port}`, path: '/', method: 'GET' }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(RedirectRefusedError);
      expect((err as Error).message).toMatch(/localhost: its address .* is a loopback address/);
      expect(connections).toBe(before);
    } finally {
      await agent.close();
    }
  });

  it('the same name is connected to when the upstream is on loopback too', async () => {
    const policy = new RedirectPolicy({ upstream: 'http://localhost:1', allowPrivate: false });
    const agent = new Agent({ connect: { lookup: policy.lookup } });
    try {
      const res = await agent.request({ origin: `http://localhost:${port}`, path: '/', method: 'GET' });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('internal answer');
    } finally {
      await agent.close();
    }
  });
});
