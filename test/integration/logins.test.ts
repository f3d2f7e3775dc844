/**
 * Logins over HTTP: the failed-login limit counts each attempt before its bcrypt check, per
 * client address and user, so a burst of wrong passwords costs at most auth.maxFailures checks
 * and one user's lockout does not lock out the others behind the same address.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

let work: string;
let airlock: RunningAirlock;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-logins-'));
  // ci at cost 11: bcryptjs runs a check in slices of 100 ms, so at this cost checks overlap
  // and later attempts arrive while earlier ones run (at cost 10 or less they run one by one).
  await writeFile(path.join(work, 'htpasswd'), `ci:${bcrypt.hashSync('ci-pw', 11)}\ndev:${bcrypt.hashSync('dev-pw', 5)}\n`);
  airlock = await startAirlock([
    'listen: 127.0.0.1:0',
    `storage:\n  root: ${path.join(work, 'data')}`,
    'log:\n  level: warn',
    `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}\n  maxFailures: 10`,
    '',
  ].join('\n'));
});

afterAll(async () => {
  await airlock?.stop();
  await rm(work, { recursive: true, force: true });
});

async function v2(authorization: string): Promise<{ status: number; retryAfter?: string }> {
  const r = await request(`${airlock.url}/v2/`, { headers: { authorization } });
  await r.body.dump();
  return { status: r.statusCode, retryAfter: r.headers['retry-after'] as string | undefined };
}

describe('failed logins over HTTP', () => {
  it('answers 40 concurrent wrong passwords with at most maxFailures 401s and 429s for the rest; another user from the same address still logs in', async () => {
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => v2(basic('ci', `wrong-${i}`))));
    const count = (s: number) => answers.filter((a) => a.status === s).length;
    // Before: more than maxFailures were checked with bcrypt and answered 401 (12 here).
    expect({ 401: count(401), 429: count(429) }).toEqual({ 401: 10, 429: 30 });
    expect(answers.find((a) => a.status === 429)?.retryAfter).toMatch(/^\d+$/);
    // Locked: even the right password waits for the window.
    expect((await v2(basic('ci', 'ci-pw'))).status).toBe(429);
    // Before: the whole address was locked out.
    expect((await v2(basic('dev', 'dev-pw'))).status).toBe(200);
    // Each failure was logged once, with the user and address and never the password.
    const failed = airlock.logs.filter((l) => l.msg === 'login failed');
    expect(failed).toHaveLength(10);
    expect(failed[0]).toMatchObject({ user: 'ci', remote: '127.0.0.1' });
    expect(JSON.stringify(airlock.logs)).not.toContain('wrong-');
  });
});
