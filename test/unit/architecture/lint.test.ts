/**
 * Lint is part of the tests, so CI enforces what it checks: the layers of DESIGN.md for every
 * folder (no-restricted-imports), 350 lines per src/ file (max-lines), floating promises.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ESLINT = 'node_modules/.bin/eslint';

async function lintText(file: string, text: string): Promise<string> {
  const child = execFile(ESLINT, ['--stdin', '--stdin-filename', file], { timeout: 60_000 });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stdin?.end(text);
  await new Promise((r) => child.once('exit', r));
  return out;
}

describe('lint', () => {
  it('passes on the whole repository with no warnings', async () => {
    const r = await run(ESLINT, ['--max-warnings=0', '.'], { timeout: 240_000, maxBuffer: 16 << 20 }).catch((e: { stdout?: string; code?: number }) => e);
    expect((r as { stdout?: string }).stdout ?? '').toBe('');
  }, 300_000);

  it('refuses an import against the layers: metrics/ reading the upstream client, storage/ reading mirror/', async () => {
    expect(await lintText('src/metrics/metrics.ts', "import type { UpstreamClient } from '../upstream/client.js';\nexport type X = UpstreamClient;\n")).toContain('metrics/ must not import upstream/');
    expect(await lintText('src/storage/store.ts', "import type { ImageSource } from '../mirror/image-source.js';\nexport type X = ImageSource;\n")).toContain('storage/ must not import mirror/');
  }, 120_000);

  it('refuses a src/ file over 350 lines', async () => {
    const long = Array.from({ length: 351 }, (_, i) => `export const v${i} = ${i};`).join('\n') + '\n';
    expect(await lintText('src/oci/digest.ts', long)).toContain('max-lines');
  }, 120_000);
});
