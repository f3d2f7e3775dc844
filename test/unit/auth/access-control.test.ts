import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { AccessControl, readHtpasswd } from '../../../src/auth/access-control.js';
import { createLogger } from '../../../src/logging/logger.js';
import { parseContentRange } from '../../../src/http/routes/uploads.js';

const log = createLogger({ level: 'silent' });
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

async function htpasswd(text: string): Promise<string> {
  const f = path.join(await mkdtemp(path.join(os.tmpdir(), 'airlock-htpasswd-')), 'htpasswd');
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
    await expect(ac.authenticate(basic('ci', 'ci-pw'), '2.2.2.2')).rejects.toMatchObject({ code: 'TOOMANYREQUESTS' });
    // Another client is not affected; without rules a user may do everything.
    expect(await ac.authenticate(basic('ci', 'ci-pw'), '3.3.3.3')).toBe('ci');
    expect(ac.allowed('ci', 'any/thing', 'delete')).toBe(true);
    expect(ac.allowed(undefined, 'any/thing', 'pull')).toBe(false);
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
