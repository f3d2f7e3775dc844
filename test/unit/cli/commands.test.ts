/**
 * Every command module is imported for every invocation (main.ts lists them to dispatch and to
 * build --help), so each must leave its heavy modules to run(): `airlock --version` and
 * `airlock --help` load no package, and `airlock du` not the HTTP server.
 */
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

describe('command modules', () => {
  it('load no package until their command runs', async () => {
    const files = (await readdir('src/cli/commands')).filter((f) => f.endsWith('.ts')).map((f) => `./src/cli/commands/${f}`);
    const script = `
      const { createRequire } = await import('node:module');
      for (const f of ${JSON.stringify(['./src/cli/help.ts', ...files])}) await import(f);
      const loaded = Object.keys(createRequire(process.cwd() + '/x.js').cache);
      console.log(JSON.stringify([...new Set(loaded.map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1]).filter(Boolean))]));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
    const pkgs = JSON.parse(stdout.trim().split('\n').pop()!) as string[];
    expect(files.length).toBeGreaterThanOrEqual(7);
    // tsx and esbuild: the test's own TypeScript loader.
    expect(pkgs.filter((p) => p !== 'tsx' && p !== 'esbuild')).toEqual([]);
  });
});
