/**
 * A serving process loads only what it uses (README: memory). Each of these was loaded by every
 * `airlock serve` once, for nothing: the AWS SDK (≈ 30 MiB of RSS) with a filesystem store,
 * undici's index (fetch, WebSocket, caches: 10 MiB), tar-stream (the bundle code), and Ajv
 * (fastify's schema compiler; airlock declares no schemas). `airlock serve` also reads its
 * configuration in a worker thread, so the YAML parser and zod do not stay loaded either.
 *
 * A fresh process starts airlock on a filesystem store, answers a request, and lists the
 * packages it loaded.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';

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

  it('airlock serve reads its configuration in a worker: yaml (and zod beside it) never load in the serving thread', async () => {
    const port = await freePort();
    const cfg = path.join(dir, 'mirror.yml');
    await writeFile(cfg, `listen: "127.0.0.1:${port}"\nstorage:\n  root: ${dir}/store\nlog:\n  level: warn\n`);
    const script = `
      const { createRequire } = await import('node:module');
      const { serve } = await import('./dist/cli/commands/serve.js');
      void serve.run({ config: ${JSON.stringify(cfg)} }, []);
      let status = 0;
      for (let i = 0; i < 200 && !status; i++) {
        status = await fetch('http://127.0.0.1:${port}/v2/').then((r) => r.status, () => 0);
        if (!status) await new Promise((r) => setTimeout(r, 50));
      }
      const files = Object.keys(createRequire(process.cwd() + '/x.js').cache);
      const pkgs = [...new Set(files.map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1]).filter(Boolean))];
      console.log(JSON.stringify({ status, pkgs }));
      process.exit(0);
    `;
    // The built code (npm test builds first), as `airlock serve` runs it: the worker is a module
    // file beside load-isolated.js. A file, not -e: a worker inherits the process's flags, and
    // --input-type is refused there.
    const file = path.join(dir, 'serve.mjs');
    await writeFile(file, script.replace("'./dist/cli/commands/serve.js'", JSON.stringify(path.resolve('dist/cli/commands/serve.js'))));
    const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 60_000 });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as { status: number; pkgs: string[] };
    // It listens where the configuration said: the worker's result was used.
    expect(r.status).toBe(200);
    expect(r.pkgs).toEqual(expect.arrayContaining(['fastify', 'undici']));
    expect(r.pkgs).not.toContain('yaml');
  });
});
