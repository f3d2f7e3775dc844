/**
 * Limits against abuse (README "Security model"): a trickled body is cut, blob size and open
 * upload sessions are bounded, and what /readyz and /metrics tell depends on who asks and where.
 * Asserted against airlock over real sockets: statuses, codes, what the upload holds afterwards.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import bcrypt from 'bcryptjs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { freePort } from '../helpers/ports.js';

const A = { user: 'alice', password: 'alice-pass-1' };
const B = { user: 'bob', password: 'bob-pass-2' };
const basic = (u: { user: string; password: string }) => `Basic ${Buffer.from(`${u.user}:${u.password}`).toString('base64')}`;

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-limits-'));
  await writeFile(path.join(work, 'htpasswd'), [A, B].map((u) => `${u.user}:${bcrypt.hashSync(u.password, 5)}`).join('\n') + '\n');
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function call(base: string, method: string, p: string, headers: Record<string, string> = {}, body?: Buffer) {
  const r = await request(`${base}${p}`, { method: method as 'GET', headers, body });
  const text = await r.body.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { errors?: Array<{ code: string }> }).errors?.[0]?.code;
  } catch {
    code = undefined;
  }
  return { status: r.statusCode, headers: r.headers, text, code };
}

describe('a request body that trickles', () => {
  let reg: RunningAirlock;
  beforeAll(async () => {
    reg = await startAirlock(`storage:\n  root: ${path.join(work, 'slow')}\nhttp:\n  minBodyRate: 1KiB\n  bodyRateWindow: 2s`);
  });
  afterAll(async () => reg?.stop());

  it('is cut with 408 once a window passes below http.minBodyRate, and the upload keeps nothing of it', async () => {
    const open = await call(reg.url, 'POST', '/v2/slow/app/blobs/uploads/');
    expect(open.status).toBe(202);
    const location = String(open.headers.location);
    // One byte every 400 ms, chunked: never idle, never fast.
    const socket = net.connect(reg.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`PATCH ${location} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const started = Date.now();
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write('1\r\nx\r\n');
    }, 400);
    try {
      const ms = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 9000))]);
      expect(ms, 'the connection was still open after 9 s').toBeGreaterThan(0);
      expect(ms).toBeLessThan(6000);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('http.minBodyRate');
    expect(reg.logs.some((l) => l.msg === 'request body slower than http.minBodyRate; connection closed')).toBe(true);
    const status = await call(reg.url, 'GET', location);
    expect(status.status).toBe(204);
    expect(status.headers.range).toBe('0-0');
    // A body at an honest pace still goes through.
    const bytes = randomBytes(64 * 1024);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const put = await call(reg.url, 'PUT', `${location}?digest=${digest}`, { 'content-type': 'application/octet-stream' }, bytes);
    expect(put.status).toBe(201);
  });
});

describe('blob size and open uploads', () => {
  let reg: RunningAirlock;
  let root: string;
  beforeAll(async () => {
    root = path.join(work, 'sizes');
    reg = await startAirlock(
      [
        `storage:\n  root: ${root}\n  maxSize: 1MiB`,
        'push:\n  maxBlobSize: 100KiB\n  maxUploads: 3',
        `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}`,
      ].join('\n'),
    );
  });
  afterAll(async () => reg?.stop());

  it('refuses a blob over push.maxBlobSize, announced or not, and keeps no byte of it', async () => {
    const big = randomBytes(150 * 1024);
    const digest = `sha256:${createHash('sha256').update(big).digest('hex')}`;
    const mono = await call(reg.url, 'POST', `/v2/team/app/blobs/uploads/?digest=${digest}`, { authorization: basic(A), 'content-type': 'application/octet-stream' }, big);
    expect(mono.status).toBe(403);
    expect(mono.code).toBe('DENIED');
    expect(mono.text).toContain('push.maxBlobSize');
    // Chunked, without a length: refused as the bytes pass the limit; the session keeps what it had.
    const open = await call(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { authorization: basic(A) });
    const location = String(open.headers.location);
    const first = await call(reg.url, 'PATCH', location, { authorization: basic(A), 'content-type': 'application/octet-stream' }, big.subarray(0, 60 * 1024));
    expect(first.status).toBe(202);
    const over = await request(`${reg.url}${location}`, {
      method: 'PATCH',
      headers: { authorization: basic(A), 'content-type': 'application/octet-stream' },
      // A stream: sent chunked, so nothing announces the size.
      body: Readable.from([big.subarray(60 * 1024)]),
    });
    expect(over.statusCode).toBe(403);
    await over.body.dump();
    const status = await call(reg.url, 'GET', location, { authorization: basic(A) });
    expect(status.headers.range).toBe(`0-${60 * 1024 - 1}`);
    await call(reg.url, 'DELETE', location, { authorization: basic(A) });
    expect(await readdir(path.join(root, 'docker/registry/v2/blobs')).catch(() => [])).toEqual([]);
  });

  it('lets one user hold push.maxUploads sessions, not one more, without touching another user', async () => {
    const locations: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { authorization: basic(A) });
      expect(r.status).toBe(202);
      locations.push(String(r.headers.location));
    }
    const fourth = await call(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { authorization: basic(A) });
    expect(fourth.status).toBe(429);
    expect(fourth.code).toBe('TOOMANYREQUESTS');
    expect(fourth.text).toContain('push.maxUploads');
    const other = await call(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { authorization: basic(B) });
    expect(other.status).toBe(202);
    // A finished or cancelled session frees its place.
    expect((await call(reg.url, 'DELETE', locations[0]!, { authorization: basic(A) })).status).toBe(204);
    expect((await call(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { authorization: basic(A) })).status).toBe(202);
  });
});

describe('what /readyz and /metrics tell', () => {
  let reg: RunningAirlock;
  let metricsPort: number;
  beforeAll(async () => {
    const dead = await freePort();
    metricsPort = await freePort();
    reg = await startAirlock(
      [
        `storage:\n  root: ${path.join(work, 'ready')}`,
        `upstreams:\n  docker.io:\n    url: http://127.0.0.1:${dead}\n    retries: 0`,
        `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}\n  anonymous: read`,
      ].join('\n'),
    );
  });
  afterAll(async () => reg?.stop());

  it('gives anonymous callers one word per upstream, logged-in users the details, and /metrics only with a login', async () => {
    const anon = await call(reg.url, 'GET', '/readyz');
    expect(anon.status).toBe(200);
    expect(JSON.parse(anon.text)).toEqual({ ready: true, store: 'writable', upstreams: { 'docker.io': 'unreachable' } });
    expect(anon.text).not.toContain('127.0.0.1');
    const full = await call(reg.url, 'GET', '/readyz', { authorization: basic(A) });
    expect((JSON.parse(full.text) as { upstreams: Record<string, string> }).upstreams['docker.io']).toMatch(/^unreachable: ./);
    const metricsAnon = await call(reg.url, 'GET', '/metrics');
    expect(metricsAnon.status).toBe(401);
    expect(metricsAnon.headers['www-authenticate']).toContain('Basic');
    const metrics = await call(reg.url, 'GET', '/metrics', { authorization: basic(A) });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('airlock_');
  });

  it('gives the details on metrics.listen without a login', async () => {
    const dead = await freePort();
    const other = await startAirlock(
      [
        `storage:\n  root: ${path.join(work, 'ready2')}`,
        `upstreams:\n  docker.io:\n    url: http://127.0.0.1:${dead}\n    retries: 0`,
        `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}`,
        `metrics:\n  listen: 127.0.0.1:${metricsPort}`,
      ].join('\n'),
    );
    try {
      await other.metricsApp!.listen({ host: '127.0.0.1', port: metricsPort });
      const r = await call(`http://127.0.0.1:${metricsPort}`, 'GET', '/readyz');
      expect((JSON.parse(r.text) as { upstreams: Record<string, string> }).upstreams['docker.io']).toMatch(/^unreachable: ./);
      expect((await call(`http://127.0.0.1:${metricsPort}`, 'GET', '/metrics')).status).toBe(200);
      expect((await call(other.url, 'GET', '/metrics')).status).toBe(404);
    } finally {
      await other.stop();
    }
  });
});
