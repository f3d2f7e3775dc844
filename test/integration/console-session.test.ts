/**
 * The console's logins: the form's JSON login sets an HttpOnly, SameSite=Strict session cookie;
 * changes made with the cookie need the session's CSRF token and this origin; logout ends the
 * session on the server; a new password ends it too. Every /ui answer carries the strict
 * security headers; the registry's answers do not change. ui.path moves it all, and
 * ui.enabled: false removes it.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { parseConfig } from '../../src/config/load.js';
import { UI_ASSETS } from '../../src/http/plugins/ui.js';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { generateImage } from '../helpers/images.js';
import { skopeoCopy } from '../helpers/skopeo.js';
import { snapshot } from '../helpers/store-files.js';


let work: string;
let a: RunningAirlock;
let archive: string;

const yml = (extra: string[] = []) => [
  'listen: 127.0.0.1:0',
  `storage:\n  root: ${path.join(work, 'store')}\n  delete:\n    enabled: true`,
  'log:\n  level: warn',
  `audit:\n  file: ${path.join(work, 'audit.log')}`,
  `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}\n  rules:\n    - users: ["admin"]\n      actions: [pull, push, delete]\n    - users: ["dev"]\n      repositories: ["team/**"]\n      actions: [pull, push]`,
  ...extra,
  '',
].join('\n');

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; json: Record<string, unknown> }
async function call(url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer> {
  const r = await request(url, { method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  const text = await r.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Not JSON (a page, or an empty 204).
  }
  return { status: r.statusCode, headers: r.headers, json };
}

async function login(user: string, password: string, base = a.url, prefix = '/ui'): Promise<{ cookie: string; csrf: string; answer: Answer }> {
  const answer = await call(`${base}${prefix}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }) });
  const set = String(answer.headers['set-cookie'] ?? '');
  return { cookie: set.split(';')[0]!, csrf: String(answer.json.csrf ?? ''), answer };
}

const uploadWith = (headers: Record<string, string>) => readFile(archive).then((body) => call(`${a.url}/ui/api/archive`, { method: 'POST', headers: { 'content-type': 'application/x-tar', ...headers }, body }));
const code = (r: Answer) => (r.json.errors as Array<{ code: string; message: string }> | undefined)?.[0];

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-console-session-'));
  await writeFile(path.join(work, 'htpasswd'), `admin:${bcrypt.hashSync('admin-pw', 5)}\ndev:${bcrypt.hashSync('dev-pw', 5)}\n`);
  const g = await generateImage(path.join(work, 'g'), { layers: 1, layerSize: 50_000, format: 'docker' });
  archive = path.join(work, 'app.tar');
  await skopeoCopy(g.source, `docker-archive:${archive}:team/app:1`);
  a = await startAirlock(yml());
}, 60_000);

afterAll(async () => {
  await a?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('console logins', () => {
  it('answers the session of an anonymous visitor, with no token; the security headers are on every /ui answer and on no registry answer', async () => {
    const s = await call(`${a.url}/ui/api/session`);
    expect(s.status).toBe(200);
    expect(s.json).toMatchObject({ user: null, authEnabled: true, csrf: null, canAdminister: false, readOnly: false });
    expect(s.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'; style-src 'self'.*frame-ancestors 'none'/);
    expect(s.headers['x-frame-options']).toBe('DENY');
    expect(s.headers['x-content-type-options']).toBe('nosniff');
    const v2 = await call(`${a.url}/v2/`);
    expect(v2.status).toBe(401);
    expect(v2.headers['content-security-policy']).toBeUndefined();
    // A 401 of the console's API never asks the browser for a Basic login box.
    const denied = await call(`${a.url}/ui/api/archive?image=team/app:1`);
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toBeUndefined();
  });

  it('logs in with JSON only: a wrong password is 401 and audited, a form post is 415, the cookie is HttpOnly and SameSite=Strict', async () => {
    const wrong = await login('admin', 'nope');
    expect(wrong.answer.status).toBe(401);
    expect(wrong.answer.headers['set-cookie']).toBeUndefined();
    // No Basic challenge: the browser would answer it with its own login box over the form.
    expect(wrong.answer.headers['www-authenticate']).toBeUndefined();
    const audit = await readFile(path.join(work, 'audit.log'), 'utf8');
    expect(audit).toMatch(/"audit":"login-failed".*"user":"admin"/);
    const form = await call(`${a.url}/ui/api/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'user=admin&password=admin-pw' });
    expect(form.status).toBe(415);
    expect(form.headers['set-cookie']).toBeUndefined();
    const ok = await login('admin', 'admin-pw');
    expect(ok.answer.status).toBe(200);
    expect(ok.answer.json).toMatchObject({ user: 'admin', csrf: expect.stringMatching(/^[\w-]{32}$/) });
    const set = String(ok.answer.headers['set-cookie']);
    expect(set).toMatch(/^airlock_session=[\w-]{43}; Path=\/ui; HttpOnly; SameSite=Strict$/);
    const s = await call(`${a.url}/ui/api/session`, { headers: { cookie: ok.cookie } });
    expect(s.json).toMatchObject({ user: 'admin', csrf: ok.csrf, canAdminister: true, canDelete: true });
    expect((await call(`${a.url}/ui/api/session`, { headers: { cookie: 'airlock_session=forged-value' } })).json.user).toBeNull();
  });

  it('a change with the cookie needs the CSRF token and this origin; the store is untouched when refused', async () => {
    const { cookie, csrf } = await login('dev', 'dev-pw');
    // dev may push but not delete: the console shows no delete buttons.
    expect((await call(`${a.url}/ui/api/session`, { headers: { cookie } })).json).toMatchObject({ user: 'dev', canDelete: false, canAdminister: false });
    const before = await snapshot(path.join(work, 'store'));
    const without = await uploadWith({ cookie });
    expect(without.status).toBe(403);
    expect(code(without)).toMatchObject({ code: 'DENIED', message: expect.stringMatching(/x-airlock-csrf/) });
    // Change the last character to one it is not, so the token is always wrong.
    const wrong = await uploadWith({ cookie, 'x-airlock-csrf': `${csrf.slice(0, -1)}${csrf.endsWith('x') ? 'y' : 'x'}` });
    expect(wrong.status).toBe(403);
    const cross = await uploadWith({ cookie, 'x-airlock-csrf': csrf, origin: 'http://127.0.0.1:1' });
    expect(cross.status).toBe(403);
    expect(code(cross)?.message).toMatch(/another origin/);
    expect(await snapshot(path.join(work, 'store'))).toEqual(before);
    const good = await uploadWith({ cookie, 'x-airlock-csrf': csrf, origin: a.url });
    expect(good.status, JSON.stringify(good.json)).toBe(201);
    // HTTP Basic (a script) needs no token.
    const auth = `Basic ${Buffer.from('dev:dev-pw').toString('base64')}`;
    const basic = await uploadWith({ authorization: auth });
    expect(basic.status).toBe(201);
    // But a browser adds Basic credentials it remembers to a cross-site page's request too.
    const after = await snapshot(path.join(work, 'store'));
    const crossBasic = await uploadWith({ authorization: auth, origin: 'http://evil.example' });
    expect(crossBasic.status).toBe(403);
    expect(code(crossBasic)?.message).toBe('a change from another origin (http://evil.example) is refused');
    const siteBasic = await uploadWith({ authorization: auth, 'sec-fetch-site': 'cross-site' });
    expect(siteBasic.status).toBe(403);
    expect(code(siteBasic)?.message).toBe('a change from a cross-site page is refused');
    // Nor a push under /v2/ (a simple POST a page can send).
    const v2 = await call(`${a.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: auth, 'sec-fetch-site': 'cross-site' } });
    expect(v2.status).toBe(403);
    expect(code(v2)).toMatchObject({ code: 'DENIED', message: 'a change from a cross-site page is refused' });
    expect(await snapshot(path.join(work, 'store'))).toEqual(after);
    // Behind a proxy that ends TLS the page's origin is https and this server's http: the host decides.
    expect((await uploadWith({ authorization: auth, origin: a.url.replace('http://', 'https://') })).status).toBe(201);
  });

  it('logout ends the session on the server: the old cookie logs nobody in', async () => {
    const { cookie, csrf } = await login('admin', 'admin-pw');
    const noToken = await call(`${a.url}/ui/api/logout`, { method: 'POST', headers: { cookie } });
    expect(noToken.status).toBe(403);
    const out = await call(`${a.url}/ui/api/logout`, { method: 'POST', headers: { cookie, 'x-airlock-csrf': csrf } });
    expect(out.status).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^airlock_session=; Max-Age=0; Path=\/ui; HttpOnly; SameSite=Strict$/);
    expect((await call(`${a.url}/ui/api/session`, { headers: { cookie } })).json.user).toBeNull();
  });

  it('a new password ends the sessions of that user at the next request (SIGHUP reload of the htpasswd file)', async () => {
    const { cookie } = await login('dev', 'dev-pw');
    expect((await call(`${a.url}/ui/api/session`, { headers: { cookie } })).json.user).toBe('dev');
    await writeFile(path.join(work, 'htpasswd'), `admin:${bcrypt.hashSync('admin-pw', 5)}\ndev:${bcrypt.hashSync('new-pw', 5)}\n`);
    await a.reload();
    expect((await call(`${a.url}/ui/api/session`, { headers: { cookie } })).json.user).toBeNull();
    expect((await login('dev', 'new-pw')).answer.status).toBe(200);
  });
});

describe('the console\'s files', () => {
  it('serves index.html for every page route with its base, the hashed assets gzipped and immutable, and 404s for the rest', async () => {
    const page = await request(`${a.url}/ui/repositories?q=x`);
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
    const html = await page.body.text();
    expect(html).toContain('<base href="/ui/">');
    // No inline script or style: the CSP would refuse it.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|style="/);
    const script = /<script[^>]*src="([^"]+)"/.exec(html)?.[1];
    expect(script).toMatch(/^\.?\/?assets\/app-[0-9a-f]+\.js$/);
    const asset = await request(new URL(script!, `${a.url}/ui/`).toString(), { headers: { 'accept-encoding': 'gzip' } });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-encoding']).toBe('gzip');
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const onDisk = await readFile(path.join(UI_ASSETS, 'assets', path.basename(script!)));
    expect(gunzipSync(Buffer.from(await asset.body.arrayBuffer())).equals(onDisk)).toBe(true);
    const again = await request(new URL(script!, `${a.url}/ui/`).toString(), { headers: { 'if-none-match': String(asset.headers.etag) } });
    expect(again.statusCode).toBe(304);
    await again.body.dump();
    expect((await call(`${a.url}/ui/assets/nope.js`)).status).toBe(404);
    expect((await call(`${a.url}/ui/api/nope`)).status).toBe(404);
    const bare = await request(`${a.url}/ui`);
    expect(bare.statusCode).toBe(308);
    expect(bare.headers.location).toBe('/ui/');
    await bare.body.dump();
  });
});

describe('ui.path and ui.enabled', () => {
  it('serves the console under ui.path only, and not at all when disabled; a path inside /v2 is refused at start', async () => {
    const moved = await startAirlock(yml(['ui:\n  path: /console']));
    try {
      expect((await call(`${moved.url}/console/api/session`)).status).toBe(200);
      expect((await call(`${moved.url}/ui/api/session`)).status).toBe(404);
      const { answer } = await login('admin', 'admin-pw', moved.url, '/console');
      expect(String(answer.headers['set-cookie'])).toMatch(/Path=\/console;/);
      const page = await request(`${moved.url}/console/`);
      expect(await page.body.text()).toContain('<base href="/console/">');
    } finally {
      await moved.stop();
    }
    const off = await startAirlock(yml(['ui:\n  enabled: false']));
    try {
      const r = await call(`${off.url}/ui/api/session`);
      expect(r.status).toBe(404);
      expect(code(r)?.code).toBe('NOT_FOUND');
      expect((await call(`${off.url}/ui/`)).status).toBe(404);
    } finally {
      await off.stop();
    }
    expect(() => parseConfig('ui:\n  path: /v2/console\n', { baseDir: work, env: {} })).toThrow(/outside \/v2/);
    expect(() => parseConfig('ui:\n  path: /ui/\n', { baseDir: work, env: {} })).toThrow(/no trailing slash/);
  });

  it('without logins configured, the login endpoint says so and everyone administers', async () => {
    const open = await startAirlock([`storage:\n  root: ${path.join(work, 'open-store')}`, 'log:\n  level: warn', ''].join('\n'));
    try {
      expect((await call(`${open.url}/ui/api/session`)).json).toMatchObject({ user: null, authEnabled: false, canAdminister: true });
      const r = await login('admin', 'admin-pw', open.url);
      expect(r.answer.status).toBe(405);
      expect(code(r.answer)?.message).toMatch(/no logins/);
      // Without logins, a page on the operator's screen must still not run jobs on the mirror.
      const verify = (headers: Record<string, string>) => call(`${open.url}/ui/api/verify`, { method: 'POST', headers });
      const cross = await verify({ origin: 'http://evil.example' });
      expect(cross.status).toBe(403);
      expect(code(cross)?.message).toMatch(/another origin/);
      expect((await verify({ 'sec-fetch-site': 'same-site' })).status).toBe(403);
      expect((await verify({ origin: open.url, 'sec-fetch-site': 'same-origin' })).status).toBe(202);
    } finally {
      await open.stop();
    }
  });
});


