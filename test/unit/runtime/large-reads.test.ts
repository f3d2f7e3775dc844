/**
 * The object-store connector: its sockets read in large pieces, and the bytes that come out are
 * exactly the bytes sent, whether a read filled the buffer (handed on) or not (copied out).
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { largeReadConnector } from '../../../src/runtime/large-reads.js';
import { Agent, requestUrl } from '../../../src/runtime/undici.js';
import { issueCert, makeCA, type TestCA } from '../../helpers/tls.js';

const bulk = randomBytes(16 << 20);
// Small writes with pauses between them make small reads (the copy path), then a bulk burst.
const trickle = Array.from({ length: 300 }, (_, i) => randomBytes(1 + ((i * 7919) % 5000)));
const sha = (b: Buffer | Buffer[]) => createHash('sha256').update(Array.isArray(b) ? Buffer.concat(b) : b).digest('hex');

function serve(res: http.ServerResponse, url: string | undefined): void {
  if (url === '/bulk') {
    res.writeHead(200, { 'content-length': bulk.length }).end(bulk);
    return;
  }
  const total = trickle.reduce((n, b) => n + b.length, 0) + bulk.length;
  res.writeHead(200, { 'content-length': total });
  void (async () => {
    for (const b of trickle) {
      res.write(b);
      await sleep(1);
    }
    res.end(bulk);
  })();
}

let server: http.Server;
let origin: string;
let dir: string;
let ca: TestCA;
let tlsServer: https.Server;
let tlsOrigin: string;

beforeAll(async () => {
  server = http.createServer((req, res) => serve(res, req.url));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-large-reads-'));
  ca = await makeCA(dir, 'ca');
  tlsServer = https.createServer(await issueCert(ca, dir, 'server'), (req, res) => serve(res, req.url));
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  tlsOrigin = `https://127.0.0.1:${(tlsServer.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await new Promise((r) => tlsServer.close(r));
  await rm(dir, { recursive: true, force: true });
});

/** The body's chunks, read after a pause that lets the kernel's socket buffers fill. */
async function chunks(agent: Agent, url: string): Promise<Buffer[]> {
  const res = await requestUrl(agent, url);
  expect(res.statusCode).toBe(200);
  const out: Buffer[] = [];
  await sleep(100);
  for await (const c of res.body) out.push(c as Buffer);
  return out;
}

describe('largeReadConnector', () => {
  it('reads a bulk body in pieces larger than a normal socket read, byte for byte', async () => {
    const agent = new Agent({ connect: largeReadConnector({ timeout: 5_000 }) });
    const plain = new Agent();
    try {
      const large = await chunks(agent, `${origin}/bulk`);
      expect(sha(large)).toBe(sha(bulk));
      // A normal socket reads 64 KiB at a time (undici's read() may join two of them).
      expect(Math.max(...large.map((c) => c.length))).toBeGreaterThan(256 * 1024);
      const normal = await chunks(plain, `${origin}/bulk`);
      expect(sha(normal)).toBe(sha(bulk));
      expect(Math.max(...normal.map((c) => c.length))).toBeLessThanOrEqual(256 * 1024);
    } finally {
      await Promise.all([agent.close(), plain.close()]);
    }
  });

  it('keeps small reads intact when the buffer they came through is reused', async () => {
    const agent = new Agent({ connect: largeReadConnector({ timeout: 5_000 }, 64 * 1024) });
    try {
      for (let round = 0; round < 2; round++) {
        const body = await chunks(agent, `${origin}/trickle`);
        expect(sha(body)).toBe(sha([...trickle, bulk]));
      }
    } finally {
      await agent.close();
    }
  });

  it('connects over TLS with the options it was given', async () => {
    const trusting = new Agent({ connect: largeReadConnector({ timeout: 5_000, ca: ca.pem }) });
    const untrusting = new Agent({ connect: largeReadConnector({ timeout: 5_000 }) });
    try {
      expect(sha(await chunks(trusting, `${tlsOrigin}/trickle`))).toBe(sha([...trickle, bulk]));
      await expect(requestUrl(untrusting, `${tlsOrigin}/bulk`)).rejects.toThrow(/self.signed|unable to (get|verify)/i);
    } finally {
      await Promise.all([trusting.close(), untrusting.close()]);
    }
  });
});
