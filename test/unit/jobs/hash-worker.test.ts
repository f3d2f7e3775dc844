import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BesideReadHash, OffThreadHash } from '../../../src/jobs/hash-worker.js';

const hash = new OffThreadHash();
afterAll(() => hash.close());

describe('OffThreadHash', () => {
  it('gives the sha256 of what was added, views of larger buffers included, and starts over after each digest', async () => {
    const big = randomBytes(80 * 2 ** 20);
    // Views into one buffer: only their own bytes count. Past the backlog limit, update waits.
    for (let at = 0; at < big.length; at += 3 * 2 ** 20 + 7) await hash.update(big.subarray(at, Math.min(big.length, at + 3 * 2 ** 20 + 7)));
    expect(await hash.digest()).toBe(createHash('sha256').update(big).digest('hex'));
    await hash.update(Buffer.from('abc'));
    expect(await hash.digest()).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await hash.digest()).toBe(createHash('sha256').digest('hex'));
  });
});

describe('BesideReadHash', () => {
  it('hashes files in order, staying within its lead of the reader, and names a file it cannot read', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'airlock-beside-'));
    const beside = new BesideReadHash();
    try {
      const big = randomBytes(80 * 2 ** 20 + 5);
      const small = Buffer.from('abc');
      await writeFile(path.join(dir, 'big'), big);
      await writeFile(path.join(dir, 'small'), small);
      let settled = false;
      const first = beside.start(path.join(dir, 'big'), 0).finally(() => (settled = true));
      // 80 MiB is past the 64 MiB lead: with the reader at the start, the worker must wait.
      await new Promise((r) => setTimeout(r, 400));
      expect(settled).toBe(false);
      beside.read(0, 40 * 2 ** 20);
      await new Promise((r) => setTimeout(r, 400));
      expect(settled).toBe(true);
      expect(await first).toBe(createHash('sha256').update(big).digest('hex'));
      expect(await beside.start(path.join(dir, 'small'), 1)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      await expect(beside.start(path.join(dir, 'gone'), 2)).rejects.toThrow(/ENOENT/);
    } finally {
      await beside.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
