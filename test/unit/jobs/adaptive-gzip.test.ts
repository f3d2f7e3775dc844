import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { AdaptiveGzip, levelFor } from '../../../src/jobs/adaptive-gzip.js';

async function compress(input: Buffer, chunk: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from((function* () {
      for (let at = 0; at < input.length; at += chunk) yield input.subarray(at, at + chunk);
    })()),
    new AdaptiveGzip(6),
    async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) out.push(c);
    },
  );
  return Buffer.concat(out);
}

function text(bytes: number): Buffer {
  const words = ['layer', 'config', 'manifest', 'usr/lib/', 'etc/passwd', '\n', ' ', 'sha256:'];
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const w = words[(i * 7 + (i >> 5)) % words.length] as string;
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

describe('AdaptiveGzip', () => {
  const random = randomBytes(5 * 2 ** 20 + 123);
  const mixed = Buffer.concat([text(2 ** 20 + 1), random.subarray(0, 2 ** 20), text(3 * 2 ** 20)]);

  it('gives the same bytes however its input is chunked, and they gunzip to the input', async () => {
    for (const input of [random, mixed]) {
      const outs = await Promise.all([7, 65_536, 1_000_003, input.length].map((c) => compress(input, c)));
      const digests = new Set(outs.map((o) => createHash('sha256').update(o).digest('hex')));
      expect(digests.size).toBe(1);
      expect(gunzipSync(outs[0] as Buffer).equals(input)).toBe(true);
    }
  });

  it('stores what will not shrink and compresses what will', async () => {
    expect(await levelFor(random.subarray(0, 2 ** 20), 6)).toBe(0);
    expect(await levelFor(text(2 ** 20), 6)).toBe(6);
    const out = await compress(mixed, 65_536);
    // The random MiB is stored (a few bytes over), the text is compressed like plain gzip.
    expect(out.length).toBeGreaterThan(2 ** 20);
    expect(out.length).toBeLessThan(2 ** 20 + gzipSync(text(4 * 2 ** 20)).length * 2);
  });

  it('writes a valid gzip for empty input, and the system gzip reads every member', async () => {
    expect(gunzipSync(await compress(Buffer.alloc(0), 1)).length).toBe(0);
    const out = await compress(mixed, 65_536);
    expect(createHash('sha256').update(execFileSync('gzip', ['-dc'], { input: out, maxBuffer: 64 * 2 ** 20 })).digest('hex')).toBe(createHash('sha256').update(mixed).digest('hex'));
  });
});
