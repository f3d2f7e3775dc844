import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobBody } from '../../../src/http/blob-body.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';
import { lentBytes, readSize } from '../../../src/storage/pooled-readable.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('stored-file streams written to responses in recycled buffers', () => {
  let dir: string;
  let driver: FilesystemDriver;
  let data: Buffer;
  let server: http.Server;
  let base: string;
  /** Every stream served, kept reachable so the GC cannot close a descriptor the stream leaked. */
  const served: unknown[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-pooled-'));
    driver = new FilesystemDriver(dir);
    data = randomBytes(16 * 1024 * 1024 + 12345);
    await writeFile(path.join(dir, 'blob'), data);
    server = http.createServer((req, res) => {
      const u = new URL(req.url!, 'http://x');
      const start = u.searchParams.has('start') ? Number(u.searchParams.get('start')) : undefined;
      const end = u.searchParams.has('end') ? Number(u.searchParams.get('end')) : undefined;
      void driver.readStream('blob', start !== undefined && end !== undefined ? { start, end } : undefined).then((s) => {
        served.push(s);
        blobBody(s!).pipe(res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  /** GETs a URL, reading slowly when asked (so buffers wait in the socket while others reuse the pool). */
  function get(url: string, slow: boolean): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      http.get(url, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          parts.push(c);
          if (slow) {
            res.pause();
            setTimeout(() => res.resume(), 2);
          }
        });
        res.on('end', () => resolve(Buffer.concat(parts)));
        res.on('error', reject);
      }).on('error', reject);
    });
  }

  it('serves every byte right to many concurrent responses, fast and slow, whole and ranged', async () => {
    const jobs: Array<Promise<void>> = [];
    for (let i = 0; i < 12; i++) {
      const ranged = i % 3 === 0;
      const start = ranged ? 1000 * i + 7 : 0;
      const end = ranged ? data.length - 1 - 333 * i : data.length - 1;
      const url = ranged ? `${base}/?start=${start}&end=${end}` : `${base}/`;
      jobs.push(get(url, i % 2 === 0).then((b) => expect(sha(b)).toBe(sha(data.subarray(start, end + 1)))));
    }
    await Promise.all(jobs);
  });

  it('reads smaller chunks while responses hold many buffers, and counts every buffer back, aborted responses too', async () => {
    expect(lentBytes()).toBe(0);
    expect(readSize(512 << 10)).toBe(512 << 10);
    const jobs: Array<Promise<unknown>> = [];
    for (let i = 0; i < 14; i++) jobs.push(get(`${base}/`, true).then((b) => expect(sha(b)).toBe(sha(data))));
    // Two clients that hang up mid-blob.
    const aborted = [0, 1].map(() => new Promise<void>((resolve) => {
      const req = http.get(`${base}/`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => resolve());
    }));
    await Promise.all(aborted);
    // Slow clients' sockets fill up, and each response then holds its buffers.
    let busy = false;
    for (let i = 0; i < 500 && !busy; i++) {
      busy = readSize(512 << 10) === 128 << 10;
      if (!busy) await new Promise((r) => setTimeout(r, 10));
    }
    expect(busy).toBe(true);
    expect(readSize(64 << 10)).toBe(64 << 10);
    await Promise.all(jobs);
    for (let i = 0; i < 200 && lentBytes() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(lentBytes()).toBe(0);
    expect(readSize(512 << 10)).toBe(512 << 10);
  });

  /** Descriptors this process holds on the test's blob file. */
  function blobDescriptors(): number {
    let n = 0;
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`) === path.join(dir, 'blob')) n++;
      } catch { /* closed meanwhile */ }
    }
    return n;
  }

  it('stops reading and closes the file when the response goes away (not left to the GC)', async () => {
    // Left to the GC, a descriptor was closed with "Closing file descriptor N on garbage collection";
    // `served` keeps the streams reachable, so here it would stay open. The aborted responses above count too.
    for (let i = 0; i < 200 && blobDescriptors() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(blobDescriptors()).toBe(0);
    await new Promise<void>((resolve) => {
      http.get(`${base}/`, (res) => {
        res.once('data', () => {
          res.destroy();
          resolve();
        });
      });
    });
    for (let i = 0; i < 200 && blobDescriptors() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(blobDescriptors()).toBe(0);
  });
});
