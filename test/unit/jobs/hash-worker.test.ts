import { createHash, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { OffThreadHash } from '../../../src/jobs/hash-worker.js';

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
