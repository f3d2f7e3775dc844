import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { AccessControl, readHtpasswd, typicalCost } from '../../../src/auth/access-control.js';
import { createLogger } from '../../../src/logging/logger.js';
import { parseContentRange } from '../../../src/http/routes/uploads.js';

const log = createLogger({ level: 'silent' });
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function htpasswd(text: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-htpasswd-'));
  dirs.push(dir);
  const f = path.join(dir, 'htpasswd');
  await writeFile(f, text);
  return f;
}

describe('htpasswd', () => {
  it('reads bcrypt lines and refuses other hash schemes naming the line and user', async () => {
    const f = await htpasswd(`# comment\nalice:${bcrypt.hashSync('a', 4)}\n\nbob:${bcrypt.hashSync('b', 4).replace('$2b$', '$2y$')}\n`);
    expect([...(await readHtpasswd(f)).keys()]).toEqual(['alice', 'bob']);
    await expect(readHtpasswd(await htpasswd('carol:$apr1$abc$def\n'))).rejects.toThrow(/line 1 \(user carol\) is not a bcrypt hash/);
    await expect(readHtpasswd(await htpasswd('no-colon\n'))).rejects.toThrow(/line 1 is not "user:hash"/);
    await expect(readHtpasswd('/nonexistent/htpasswd')).rejects.toThrow(/cannot read/);
  });
});

describe('access control', () => {
  it('grants the union of the rules naming a user, "*" for any user, and pull to anonymous only with anonymous: read', async () => {
    const f = await htpasswd(`ci:${bcrypt.hashSync('ci-pw', 4)}\nview:${bcrypt.hashSync('v-pw', 4)}\n`);
    const ac = await AccessControl.load({
      htpasswd: f, anonymous: 'read', realm: 'r', maxFailures: 3,
      rules: [
        { users: ['ci'], repositories: ['team/**'], actions: ['push', 'delete'] },
        { users: ['*'], repositories: ['**'], actions: ['pull'] },
      ],
    }, log);
    expect(await ac.authenticate(basic('ci', 'ci-pw'), '1.1.1.1')).toBe('ci');
    expect(await ac.authenticate(undefined, '1.1.1.1')).toBeUndefined();
    expect(ac.allowed('ci', 'team/a/b', 'push')).toBe(true);
    expect(ac.allowed('ci', 'other/a', 'push')).toBe(false);
    expect(ac.allowed('view', 'team/a', 'pull')).toBe(true);
    expect(ac.allowed('view', 'team/a', 'delete')).toBe(false);
    expect(ac.allowed(undefined, 'team/a', 'pull')).toBe(true);
    expect(ac.allowed(undefined, 'team/a', 'push')).toBe(false);
  });

  it('answers a wrong password with a Basic challenge and a client over its failure budget with 429', async () => {
    const f = await htpasswd(`ci:${bcrypt.hashSync('ci-pw', 4)}\n`);
    const ac = await AccessControl.load({ htpasswd: f, anonymous: 'none', realm: 'site', maxFailures: 2 }, log);
    await expect(ac.authenticate(basic('ci', 'nope'), '2.2.2.2')).rejects.toMatchObject({ code: 'UNAUTHORIZED', headers: { 'www-authenticate': 'Basic realm="site"' } });
    await expect(ac.authenticate('Bearer xyz', '2.2.2.2')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(ac.authenticate(basic('ci', 'nope2'), '2.2.2.2')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(ac.authenticate(basic('ci', 'ci-pw'), '2.2.2.2')).rejects.toMatchObject({ code: 'TOOMANYREQUESTS', headers: { 'retry-after': expect.stringMatching(/^\d+$/) as unknown } });
    // Another client is not affected; without rules a user may do everything.
    expect(await ac.authenticate(basic('ci', 'ci-pw'), '3.3.3.3')).toBe('ci');
    expect(ac.allowed('ci', 'any/thing', 'delete')).toBe(true);
    expect(ac.allowed(undefined, 'any/thing', 'pull')).toBe(false);
  });
});

describe('failed-login limits', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Settles every attempt and counts the answers by code ('ok' for a login). */
  async function tally(attempts: Array<Promise<unknown>>): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const r of await Promise.allSettled(attempts)) {
      const k = r.status === 'fulfilled' ? 'ok' : String((r.reason as { code?: string }).code);
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  it('counts an attempt before its bcrypt check: 40 concurrent wrong passwords get at most maxFailures checks and 401s, the rest 429 unchecked', async () => {
    const f = await htpasswd(`ci:${bcrypt.hashSync('ci-pw', 4)}\n`);
    const ac = await AccessControl.load({ htpasswd: f, anonymous: 'none', realm: 'r', maxFailures: 10 }, log);
    const compare = vi.spyOn(bcrypt, 'compare');
    const answers = await tally(Array.from({ length: 40 }, (_, i) => ac.authenticate(basic('ci', `wrong-${i}`), '10.0.0.1')));
    // Before: every one of the 40 was checked (40 bcrypt runs) and answered 401.
    expect(compare).toHaveBeenCalledTimes(10);
    expect(answers).toEqual({ UNAUTHORIZED: 10, TOOMANYREQUESTS: 30 });
  });

  it('limits per address and user: user B from the same address logs in while user A is locked out', async () => {
    const f = await htpasswd(`a:${bcrypt.hashSync('a-pw', 4)}\nb:${bcrypt.hashSync('b-pw', 4)}\n`);
    const ac = await AccessControl.load({ htpasswd: f, anonymous: 'none', realm: 'r', maxFailures: 3 }, log);
    for (let i = 0; i < 3; i++) await expect(ac.authenticate(basic('a', 'nope'), '10.0.0.2')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(ac.authenticate(basic('a', 'a-pw'), '10.0.0.2')).rejects.toMatchObject({ code: 'TOOMANYREQUESTS' });
    // One client behind the same NAT cannot lock everyone out (before: 429 for b too).
    expect(await ac.authenticate(basic('b', 'b-pw'), '10.0.0.2')).toBe('b');
    // a's own budget is per address: a from another address is not locked.
    expect(await ac.authenticate(basic('a', 'a-pw'), '10.0.0.3')).toBe('a');
  });

  it('lets a login already remembered as good pass while its user and its address are over their budgets', async () => {
    const users = Array.from({ length: 25 }, (_, i) => `u${i}`);
    const f = await htpasswd(`good:${bcrypt.hashSync('good-pw', 4)}\n${users.map((u) => `${u}:${bcrypt.hashSync('x', 4)}`).join('\n')}\n`);
    const ac = await AccessControl.load({ htpasswd: f, anonymous: 'none', realm: 'r', maxFailures: 2 }, log);
    expect(await ac.authenticate(basic('good', 'good-pw'), '10.0.0.4')).toBe('good');
    // Its own user locked from this address...
    for (let i = 0; i < 2; i++) await expect(ac.authenticate(basic('good', 'guess'), '10.0.0.4')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(ac.authenticate(basic('good', 'guess'), '10.0.0.4')).rejects.toMatchObject({ code: 'TOOMANYREQUESTS' });
    expect(await ac.authenticate(basic('good', 'good-pw'), '10.0.0.4')).toBe('good');
    // ...and the address over its budget for all users (10 x maxFailures: trying user after user
    // is bounded too), where a login not remembered is refused without a check.
    const spray = await tally(users.map((u) => ac.authenticate(basic(u, 'guess'), '10.0.0.4')));
    expect(spray).toEqual({ UNAUTHORIZED: 18, TOOMANYREQUESTS: 7 });
    const compare = vi.spyOn(bcrypt, 'compare');
    await expect(ac.authenticate(basic('u0', 'x'), '10.0.0.4')).rejects.toMatchObject({ code: 'TOOMANYREQUESTS' });
    expect(compare).not.toHaveBeenCalled();
    expect(await ac.authenticate(basic('good', 'good-pw'), '10.0.0.4')).toBe('good');
  });

  it('checks an unknown user against a hash of the file\'s own cost, recomputed on reload', async () => {
    expect(typicalCost([])).toBe(10);
    expect(typicalCost(['$2y$05$x', '$2y$05$x', '$2y$12$x'])).toBe(5);
    expect(typicalCost(['$2y$05$x', '$2y$12$x'])).toBe(12);
    const f = await htpasswd(`ci:${bcrypt.hashSync('ci-pw', 5)}\nop:${bcrypt.hashSync('op-pw', 5)}\n`);
    const ac = await AccessControl.load({ htpasswd: f, anonymous: 'none', realm: 'r', maxFailures: 1000 }, log);
    const compare = vi.spyOn(bcrypt, 'compare');
    await expect(ac.authenticate(basic('nobody', 'pw'), '10.0.0.5')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    // Before: the dummy was cost 10 whatever the file held.
    expect(compare.mock.calls[0]?.[1]).toMatch(/^\$2[aby]\$05\$/);
    await writeFile(f, `ci:${bcrypt.hashSync('ci-pw', 4)}\n`);
    await ac.reload();
    await expect(ac.authenticate(basic('nobody', 'pw'), '10.0.0.5')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(compare.mock.calls[1]?.[1]).toMatch(/^\$2[aby]\$04\$/);
  });

  it('answers a wrong password as fast for an unknown user as for a known one (cost-5 file, as htpasswd -B makes)', async () => {
    const f = await htpasswd(`ci:${bcrypt.hashSync('ci-pw', 5)}\n`);
    const ac = await AccessControl.load({ htpasswd: f, anonymous: 'none', realm: 'r', maxFailures: 10_000 }, log);
    const time = async (user: string): Promise<number> => {
      const t = performance.now();
      await ac.authenticate(basic(user, 'wrong'), '10.0.0.6').catch(() => undefined);
      return performance.now() - t;
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const known: number[] = [];
    const unknown: number[] = [];
    // Interleaved, so a busy spell on the machine falls on both alike; medians shrug off outliers.
    for (let i = 0; i < 15; i++) {
      known.push(await time('ci'));
      unknown.push(await time(`nobody-${i}`));
    }
    // Before: about 10 ms against 100 ms (a cost-10 dummy).
    expect(median(unknown)).toBeLessThan(3 * median(known));
  });
});

describe('Content-Range of a chunk', () => {
  it('reads "start-end", tolerates a bytes prefix, refuses nonsense', () => {
    expect(parseContentRange('0-99')).toEqual({ start: 0, end: 99 });
    expect(parseContentRange('bytes 100-199/*')).toEqual({ start: 100, end: 199 });
    expect(parseContentRange(undefined)).toBeUndefined();
    expect(() => parseContentRange('10-5')).toThrow(/ends before it starts/);
    expect(() => parseContentRange('abc')).toThrow(/Content-Range/);
  });
});
