import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/logging/logger.js';
import { UpstreamClient } from '../../../src/upstream/client.js';
import { DEFAULT_RATE_LIMIT_WINDOW_MS, parseRateLimit } from '../../../src/upstream/rate-limit.js';

const now = 1_700_000_000_000;

describe('parseRateLimit', () => {
  it("reads Docker Hub's counts and takes the w= window as the reset", () => {
    expect(parseRateLimit({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600' }, now)).toEqual({
      limit: 100, remaining: 76, resetAt: now + 21_600_000, resetFrom: 'window', at: now,
    });
  });

  it('prefers Retry-After, then ratelimit-reset, to the window', () => {
    expect(parseRateLimit({ 'ratelimit-remaining': '0;w=21600', 'retry-after': '120', 'ratelimit-reset': '30' }, now)).toMatchObject({ remaining: 0, resetAt: now + 120_000, resetFrom: 'retry-after' });
    expect(parseRateLimit({ 'ratelimit-remaining': '3;w=21600', 'ratelimit-reset': '30' }, now)).toMatchObject({ remaining: 3, resetAt: now + 30_000, resetFrom: 'reset' });
    // A reset that can only be a Unix time is read as one.
    expect(parseRateLimit({ 'ratelimit-remaining': '3', 'ratelimit-reset': String(now / 1000 + 90) }, now)).toMatchObject({ resetAt: now + 90_000, resetFrom: 'reset' });
  });

  it('takes the window from ratelimit-limit when remaining has none, and an hour when nothing says', () => {
    expect(parseRateLimit({ 'ratelimit-limit': '100;w=60', 'ratelimit-remaining': '7' }, now)).toMatchObject({ limit: 100, remaining: 7, resetAt: now + 60_000, resetFrom: 'window' });
    expect(parseRateLimit({ 'ratelimit-remaining': '7' }, now)).toEqual({ remaining: 7, resetAt: now + DEFAULT_RATE_LIMIT_WINDOW_MS, resetFrom: 'default', at: now });
    expect(DEFAULT_RATE_LIMIT_WINDOW_MS).toBe(3_600_000);
  });

  it('states nothing without a remaining count, or with one that is not a number', () => {
    expect(parseRateLimit({ 'retry-after': '5' }, now)).toBeUndefined();
    expect(parseRateLimit({ 'ratelimit-limit': '100;w=21600' }, now)).toBeUndefined();
    expect(parseRateLimit({ 'ratelimit-remaining': 'lots' }, now)).toBeUndefined();
    expect(parseRateLimit({}, now)).toBeUndefined();
  });
});

describe('UpstreamClient rate-limit reserve', () => {
  const log = createLogger({ level: 'silent' });
  const client = (rateLimitReserve?: number, url = 'http://127.0.0.1:9') =>
    new UpstreamClient({ name: 'docker.io', url, insecure: false, concurrency: 1, connectTimeout: 1000, readTimeout: 1000, retries: 0, rateLimitReserve }, log);

  it('holds while fewer than the reserve are left, until the window resets', async () => {
    const c = client(10);
    try {
      expect(c.rateLimitReserveHeld(now)).toBe(false);
      c.rateLimit = { remaining: 9, limit: 100, resetAt: now + 1000, resetFrom: 'window', at: now };
      expect(c.rateLimitReserveHeld(now)).toBe(true);
      expect(c.rateLimitNow(now)?.remaining).toBe(9);
      expect(c.rateLimitReserveHeld(now + 1000)).toBe(false);
      expect(c.rateLimitNow(now + 1000)).toBeUndefined();
      c.rateLimit = { remaining: 10, limit: 100, resetAt: now + 1000, resetFrom: 'window', at: now };
      expect(c.rateLimitReserveHeld(now)).toBe(false);
    } finally {
      await c.close();
    }
  });

  it('defaults to a reserve of 10; 0 never holds', async () => {
    const d = client(undefined);
    const z = client(0);
    try {
      expect(d.rateLimitReserve).toBe(10);
      z.rateLimit = { remaining: 0, resetAt: now + 1000, resetFrom: 'default', at: now };
      expect(z.rateLimitReserveHeld(now)).toBe(false);
    } finally {
      await Promise.all([d.close(), z.close()]);
    }
  });

  it('keeps what it knew across a reload, for the same registry only', async () => {
    const old = client(10);
    const same = client(20);
    const other = client(10, 'http://127.0.0.1:10');
    try {
      old.rateLimit = { remaining: 15, resetAt: now + 1000, resetFrom: 'window', at: now };
      same.keepRateLimit(old);
      other.keepRateLimit(old);
      expect(same.rateLimit).toEqual(old.rateLimit);
      expect(same.rateLimitReserveHeld(now)).toBe(true);
      expect(other.rateLimit).toBeUndefined();
    } finally {
      await Promise.all([old.close(), same.close(), other.close()]);
    }
  });
});

describe('upstreams.<host>.rateLimitReserve', () => {
  const cfg = (extra: string) => parseConfig(`upstreams:\n  docker.io:\n    url: https://registry.example\n${extra}`, { baseDir: '/tmp', env: {} });
  it('defaults to 10 and takes 0', () => {
    expect(cfg('').upstreams['docker.io']!.rateLimitReserve).toBe(10);
    expect(cfg('    rateLimitReserve: 0\n').upstreams['docker.io']!.rateLimitReserve).toBe(0);
  });
  it('refuses a negative or fractional reserve', () => {
    expect(() => cfg('    rateLimitReserve: -1\n')).toThrow(/upstreams\.docker\.io\.rateLimitReserve/);
    expect(() => cfg('    rateLimitReserve: 2.5\n')).toThrow(/upstreams\.docker\.io\.rateLimitReserve/);
  });
});
