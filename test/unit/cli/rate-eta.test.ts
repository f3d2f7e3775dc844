import { describe, expect, it } from 'vitest';
import { rateAndEta } from '../../../src/cli/format.js';

describe('rateAndEta', () => {
  const MiB = 2 ** 20;
  it('says starting instead of a rate and an ETA from a first tiny sample', () => {
    expect(rateAndEta(392, 515 * MiB, 1_000, 1_040)).toBe('starting');
  });
  it('gives the rate and the time left once there is something to go on', () => {
    expect(rateAndEta(100 * MiB, 300 * MiB, 0, 2_000)).toMatch(/^50(\.0)? MiB\/s, ETA 4(\.0)?s$/);
    expect(rateAndEta(200 * MiB, 300 * MiB, 0, 500)).toMatch(/MiB\/s, ETA /);
    expect(rateAndEta(300 * MiB, 300 * MiB, 0, 3_000)).toMatch(/, ETA -$/);
  });
});
