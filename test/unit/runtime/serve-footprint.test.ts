/**
 * A serving process loads only what it uses (README: memory). Each of these was loaded by every
 * `airlock serve` once, for nothing: the AWS SDK (≈ 30 MiB of RSS) with a filesystem store,
 * undici's index (fetch, WebSocket, caches: 10 MiB), tar-stream (the bundle code), and Ajv
 * (fastify's schema compiler; airlock declares no schemas).
 *
 * A fresh process starts airlock on a filesystem store, answers a request, and lists the
 * packages it loaded.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-footprint-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('what airlock serve loads', () => {
  it('a serving process with a filesystem store loads neither the AWS SDK, undici\'s index, tar-stream nor Ajv', async () => {
    const script = `
      const { createRequire } = await import('node:module');
      const { startAirlock } = await import('./test/helpers/airlock.ts');
      const a = await startAirlock(${JSON.stringify(`storage:\n  root: ${dir}\n`)});
      const res = await fetch(a.url + '/v2/');
      await a.stop();
      const files = Object.keys(createRequire(process.cwd() + '/x.js').cache);
      const pkgs = [...new Set(files.map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1]).filter(Boolean))];
      console.log(JSON.stringify({ status: res.status, pkgs, undiciIndex: files.some((f) => f.endsWith('/node_modules/undici/index.js')) }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as { status: number; pkgs: string[]; undiciIndex: boolean };
    expect(r.status).toBe(200);
    // What it does load (so the list is real): the server, the upstream client, the config parser.
    expect(r.pkgs).toEqual(expect.arrayContaining(['fastify', 'undici', 'yaml']));
    expect(r.undiciIndex).toBe(false);
    for (const p of r.pkgs) expect(p).not.toMatch(/^(@aws-sdk\/|@smithy\/|tar-stream$|ajv$|@fastify\/ajv-compiler$)/);
  });
});
