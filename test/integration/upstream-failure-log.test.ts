/**
 * An upstream that cannot be reached is an expected failure on a mirror: the request that met
 * it is logged once at warn, naming the upstream and the cause, without a stack (a stack is for
 * log.level debug). Before, each such request logged a stack trace at error.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock } from '../helpers/airlock.js';
import { freePort } from '../helpers/ports.js';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-upstream-log-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** airlock with one upstream on a port where nothing listens, at the given log level. */
async function withClosedUpstream(level: string) {
  const closed = await freePort();
  return startAirlock([
    'listen: 127.0.0.1:0',
    `storage:\n  root: ${path.join(work, `data-${level}`)}`,
    `log:\n  level: ${level}`,
    `upstreams:\n  docker.io:\n    url: http://127.0.0.1:${closed}\n    retries: 0`,
    '',
  ].join('\n'));
}

async function pull(url: string, what: string): Promise<number> {
  const r = await request(`${url}/v2/library/alpine/${what}`);
  await r.body.dump();
  return r.statusCode;
}

describe('an upstream that refuses connections', () => {
  it('logs each failed request once at warn with the upstream and the cause, and no stack', async () => {
    const a = await withClosedUpstream('info');
    try {
      expect(await pull(a.url, 'manifests/3.20')).toBe(503);
      expect(await pull(a.url, `blobs/sha256:${'a'.repeat(64)}`)).toBe(503);
      // Before: two "request failed" lines at error, each with the stack.
      expect(a.logs.filter((l) => l.level === 'error')).toEqual([]);
      expect(JSON.stringify(a.logs)).not.toContain('stack');
      const failed = a.logs.filter((l) => String(l.msg).startsWith('request failed'));
      expect(failed).toHaveLength(2);
      for (const l of failed) {
        expect(l).toMatchObject({ level: 'warn', code: 'UPSTREAM_UNAVAILABLE' });
        expect(l.err).toMatch(/^upstream docker\.io is unreachable: .*ECONNREFUSED/);
      }
      expect(new Set(failed.map((l) => l.reqId)).size).toBe(2);
    } finally {
      await a.stop();
    }
  });

  it('adds the stack at log.level debug', async () => {
    const a = await withClosedUpstream('debug');
    try {
      expect(await pull(a.url, 'manifests/3.20')).toBe(503);
      const failed = a.logs.filter((l) => String(l.msg).startsWith('request failed'));
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ level: 'warn', err: { type: 'UpstreamUnavailableError', stack: expect.stringContaining('UpstreamUnavailableError') as unknown } });
    } finally {
      await a.stop();
    }
  });
});
