/**
 * The web console in a real browser (Debian's chromium through playwright-core), against an
 * airlock with logins whose store was filled by real skopeo pulls and pushes: logging in and out;
 * finding a pulled image and its layers; a throttled cold fill's progress moving; deleting a tag
 * and the registry API agreeing; cross-origin form posts and fetches refused; a user without
 * rights seeing no forbidden repository; the CSP header, and no console error or CSP violation.
 * The accessible names used are the front-end's test hooks (/tmp/h/console-api.md "Test hooks").
 */
import { access, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { UI_ASSETS } from '../../src/http/plugins/ui.js';
import { startBrowser, type TestBrowser, type WatchedPage } from '../helpers/browser.js';
import { ADMIN, VIEWER, basic, startConsoleSite, type ConsoleSite } from '../helpers/console-site.js';
import { snapshot } from '../helpers/store-files.js';

/** The console's controls, by role and accessible name. */
const UI = {
  user: 'User',
  password: 'Password',
  logIn: 'Log in',
  logOut: 'Log out',
  overview: 'Overview',
  repositories: 'Repositories',
  search: 'Search repositories',
  layers: 'Layers',
  /** The repository page's button of one tag, and its confirm dialog's. */
  deleteTag: (tag: string) => `Delete tag ${tag}`,
  confirmDelete: 'Delete',
  notFound: /not found/i,
  loginError: /wrong user name or password/i,
} as const;

/** A size as the console shows it (decimal units, ui/src/format.ts). */
function siBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

let site: ConsoleSite;
let browser: TestBrowser;
let ui: string;

interface Who { user: string; password: string }

async function logIn(ctx: BrowserContext, who: Who): Promise<WatchedPage> {
  const wp = await browser.page(ctx);
  await wp.page.goto(`${ui}login`);
  await wp.page.getByLabel(UI.user, { exact: true }).fill(who.user);
  await wp.page.getByLabel(UI.password).fill(who.password);
  await wp.page.getByRole('button', { name: UI.logIn }).click();
  await wp.page.getByRole('heading', { name: UI.overview }).waitFor();
  return wp;
}

/** A call to the console's API from inside the page, with its session's CSRF header, as the front-end makes it. */
async function api(page: Page, method: string, endpoint: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return page.evaluate(async ([method, endpoint, body]) => {
    const base = (globalThis as unknown as { document: { baseURI: string } }).document.baseURI;
    const session = (await (await fetch(new URL('api/session', base))).json()) as { csrf: string | null };
    const headers: Record<string, string> = session.csrf ? { 'x-airlock-csrf': session.csrf } : {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(new URL(`api/${endpoint}`, base), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let json: unknown = text;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, json };
  }, [method, endpoint, body] as const);
}

/** The registry API, as a client with the admin's login sees it. */
async function registry(urlPath: string, method: 'GET' | 'HEAD' = 'GET'): Promise<{ status: number; body: string; digest?: string }> {
  const r = await request(`${site.airlock.url}${urlPath}`, {
    method,
    headers: { authorization: basic(ADMIN), accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  return { status: r.statusCode, body: method === 'HEAD' ? (await r.body.dump(), '') : await r.body.text(), digest: r.headers['docker-content-digest'] as string | undefined };
}

beforeAll(async () => {
  // The console's files come from the build; without them every page is a 503.
  await access(path.join(UI_ASSETS, 'index.html')).catch(() => {
    throw new Error(`the console is not built (${UI_ASSETS}/index.html is missing): run npm run build`);
  });
  // attacker.test: a site of its own for the browser (SameSite applies), still served on 127.0.0.1.
  [site, browser] = await Promise.all([startConsoleSite({ logLevel: 'info' }), startBrowser({ args: ['--host-resolver-rules=MAP attacker.test 127.0.0.1'] })]);
  ui = `${site.airlock.url}/ui/`;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await site?.stop();
});

describe('logging in', () => {
  it('a wrong password shows an error and sets no cookie; the right one lands on the overview with an HttpOnly, SameSite=Strict session; logging out ends the session', async () => {
    const ctx = await browser.context();
    const wp = await browser.page(ctx);
    const { page } = wp;
    const first = await page.goto(ui);
    expect(first?.status()).toBe(200);
    await page.getByLabel(UI.user, { exact: true }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/ui/login');

    await page.getByLabel(UI.user, { exact: true }).fill(ADMIN.user);
    await page.getByLabel(UI.password).fill('not-the-password');
    await page.getByRole('button', { name: UI.logIn }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 5000 }).toMatch(UI.loginError);
    expect(await ctx.cookies()).toEqual([]);

    await page.getByLabel(UI.password).fill(ADMIN.password);
    await page.getByRole('button', { name: UI.logIn }).click();
    await page.getByRole('heading', { name: UI.overview }).waitFor();
    const cookies = await ctx.cookies();
    expect(cookies).toHaveLength(1);
    const session = cookies[0]!;
    expect(session).toMatchObject({ name: 'airlock_session', httpOnly: true, sameSite: 'Strict', path: '/ui', secure: false });
    // HttpOnly: the page's own script cannot read it.
    expect(await page.evaluate('document.cookie')).not.toContain('airlock_session');
    expect(await api(page, 'GET', 'session')).toMatchObject({ status: 200, json: { user: ADMIN.user, canDelete: true, canAdminister: true } });

    await page.getByRole('button', { name: UI.logOut }).click();
    await page.getByLabel(UI.user, { exact: true }).waitFor();
    expect((await ctx.cookies()).filter((c) => c.value !== '')).toEqual([]);
    // The old cookie is dead on the server too, not only forgotten by this browser.
    const replay = await request(`${site.airlock.url}/ui/api/overview`, { headers: { cookie: `airlock_session=${session.value}` } });
    await replay.body.dump();
    expect(replay.statusCode).toBe(401);
    expect(wp.unexpected([401])).toEqual([]);
  });
});

describe('images pulled through airlock', () => {
  it('finds library/app (pulled by skopeo) by search, and its page shows the layers and config of the generated image', async () => {
    const wp = await logIn(await browser.context(), ADMIN);
    const { page } = wp;
    await page.getByRole('link', { name: UI.repositories }).click();
    await page.getByRole('searchbox', { name: UI.search }).fill('app');
    await page.getByRole('link', { name: 'library/app', exact: true }).waitFor();
    await expect.poll(() => page.getByRole('link', { name: 'secret/vault', exact: true }).count()).toBe(0);
    await page.getByRole('link', { name: 'library/app', exact: true }).click();
    await page.getByRole('link', { name: '1.0', exact: true }).click();
    await page.getByRole('heading', { name: UI.layers }).waitFor();
    const url = new URL(page.url());
    expect([url.pathname, url.searchParams.get('name'), url.searchParams.get('ref')]).toEqual(['/ui/image', 'library/app', '1.0']);

    const manifest = JSON.parse(site.img.app.manifestBytes.toString()) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
    const main = page.locator('main');
    // The full digests of the image and its config are on the page; each layer's row names its
    // digest (in full in the title of the short form) and shows its size as the console rounds it.
    await expect.poll(() => main.innerText()).toContain(site.img.app.manifestDigest);
    const shown = await main.innerText();
    expect(shown).toContain(manifest.config.digest);
    expect(shown).toContain('["/bin/true"]');
    expect(shown).toContain('linux/amd64');
    const rows = page.getByRole('region', { name: UI.layers }).locator('tbody tr');
    expect(await rows.count()).toBe(manifest.layers.length);
    for (const [i, l] of manifest.layers.entries()) {
      const row = rows.nth(i);
      expect(await row.locator('code').getAttribute('title')).toBe(l.digest);
      expect(await row.locator('td').last().innerText()).toBe(siBytes(l.size));
    }
    // What the page rendered from: digests and exact sizes of the image skopeo pulled.
    const image = (await api(page, 'GET', 'image?name=library/app&ref=1.0')).json as { digest: string; layers: Array<{ digest: string; size: number }>; config: { digest: string; size: number; os: string; cmd: string[] } };
    expect(image.digest).toBe(site.img.app.manifestDigest);
    expect(image.layers.map((l) => [l.digest, l.size])).toEqual(manifest.layers.map((l) => [l.digest, l.size]));
    expect(image.config).toMatchObject({ digest: manifest.config.digest, size: manifest.config.size, os: 'linux', cmd: ['/bin/true'] });
    expect(wp.unexpected()).toEqual([]);
  });
});

describe('a cold fill', () => {
  it('shows a throttled fill on the overview: its progress rises at least twice, then the fill goes away', async () => {
    const wp = await logIn(await browser.context(), ADMIN);
    const bar = wp.page.getByRole('progressbar', { name: /library\/big/ });
    const size = site.img.big.blobs.find((b) => b.size > 1 << 20)!.size;
    site.up.proxy.faults.slowBlobs = 2 << 20;
    const seen: number[] = [];
    let done = false;
    const pull = site.pull(`docker://${site.airlock.host}/library/big:1`).finally(() => { done = true; });
    try {
      while (!done) {
        if ((await bar.count()) > 0) {
          const v = Number((await bar.first().getAttribute('aria-valuenow', { timeout: 1000 }).catch(() => null)) ?? (await bar.first().getAttribute('value', { timeout: 1000 }).catch(() => null)) ?? NaN);
          if (Number.isFinite(v) && v !== seen.at(-1)) seen.push(v);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await pull;
    } finally {
      site.up.proxy.reset();
    }
    const rises = seen.filter((v, i) => i > 0 && v > seen[i - 1]!).length;
    expect(rises, `values seen: ${seen.join(', ')}`).toBeGreaterThanOrEqual(2);
    expect(Math.max(...seen)).toBeLessThanOrEqual(size);
    await expect.poll(() => bar.count(), { timeout: 5000 }).toBe(0);
    expect(wp.unexpected()).toEqual([]);
  });
});

describe('deleting a tag', () => {
  it('deletes team/app:1 after the confirm dialog; the registry API answers 404 for it and tags/list lacks it; tag 2 is untouched', async () => {
    expect((await registry('/v2/team/app/manifests/1', 'HEAD')).status).toBe(200);
    const wp = await logIn(await browser.context(), ADMIN);
    const { page } = wp;
    await page.goto(`${ui}repository?name=team/app`);
    await page.getByRole('button', { name: UI.deleteTag('1') }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete tag 1?' });
    // Cancel first: nothing happens.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => dialog.count()).toBe(0);
    expect((await registry('/v2/team/app/manifests/1', 'HEAD')).status).toBe(200);
    await page.getByRole('button', { name: UI.deleteTag('1') }).click();
    await dialog.getByRole('button', { name: UI.confirmDelete, exact: true }).click();
    await expect.poll(() => page.getByRole('status').innerText()).toMatch(/Deleted team\/app:1\b/);
    await expect.poll(() => page.getByRole('link', { name: '1', exact: true }).count()).toBe(0);
    expect(await page.getByRole('link', { name: '2', exact: true }).count()).toBe(1);
    await expect.poll(async () => (await registry('/v2/team/app/manifests/1', 'HEAD')).status).toBe(404);
    expect(JSON.parse((await registry('/v2/team/app/tags/list')).body)).toEqual({ name: 'team/app', tags: ['2'] });
    const two = await registry('/v2/team/app/manifests/2', 'HEAD');
    expect([two.status, two.digest]).toEqual([200, site.img.local.manifestDigest]);
    expect(wp.unexpected()).toEqual([]);
  });
});

describe('a page of another origin', () => {
  let evil: http.Server;
  let evilUrl: string;
  const pages = new Map<string, string>();
  const reports: unknown[] = [];

  beforeAll(async () => {
    evil = http.createServer((req, res) => {
      if (req.method === 'POST' && req.url === '/report') {
        let b = '';
        req.on('data', (c: Buffer) => { b += c.toString(); });
        req.on('end', () => { reports.push(JSON.parse(b)); res.writeHead(204).end(); });
        return;
      }
      const html = pages.get(req.url ?? '');
      res.writeHead(html ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' }).end(html ?? 'no');
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    evilUrl = `http://127.0.0.1:${(evil.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    evil.closeAllConnections();
    await new Promise((r) => evil.close(r));
  });

  it('cannot make the logged-in admin pin, delete, upload, collect garbage or log in as someone else: the store is unchanged, the tag still resolves', async () => {
    const a = site.airlock.url;
    const ctx = await browser.context();
    await logIn(ctx, ADMIN);
    const before = await snapshot(site.root);
    const digest = site.img.app.manifestDigest;
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    // A form whose text/plain body reads as JSON: the classic way to post JSON without a preflight.
    const form = (action: string, enctype: string, name: string, value: string) =>
      `<!doctype html><form method="post" action="${esc(a + action)}" enctype="${enctype}"><input name="${esc(name)}" value="${esc(value)}"></form><script>document.forms[0].submit()</script>`;
    const forms: Record<string, { html: string; path: string }> = {
      pin: { path: '/ui/api/pin', html: form('/ui/api/pin', 'text/plain', `{"name":"library/app","digest":"${digest}","x":"`, '"}') },
      delete: { path: '/ui/api/image', html: form('/ui/api/image?name=team/app&ref=2&_method=DELETE', 'application/x-www-form-urlencoded', '_method', 'DELETE') },
      upload: { path: '/ui/api/archive', html: form('/ui/api/archive?name=team/evil:1', 'multipart/form-data', 'archive', 'ustar') },
      gc: { path: '/ui/api/gc', html: form('/ui/api/gc', 'text/plain', '{"dryRun":false,"x":"', '"}') },
      login: { path: '/ui/api/login', html: form('/ui/api/login', 'text/plain', `{"user":"${VIEWER.user}","password":"${VIEWER.password}","x":"`, '"}') },
    };
    const statuses: Record<string, number> = {};
    for (const [k, f] of Object.entries(forms)) {
      pages.set(`/form-${k}`, f.html);
      const wp = await browser.page(ctx);
      const answered = wp.page.waitForResponse((r) => r.url().startsWith(a + f.path) && r.request().method() === 'POST');
      await wp.page.goto(`${evilUrl}/form-${k}`);
      const r = await answered;
      statuses[k] = r.status();
      // Same site: the browser did send the admin's session along.
      expect((await r.request().allHeaders()).cookie, k).toMatch(/airlock_session=/);
      await wp.page.close();
    }
    // 127.0.0.1 on another port is the same site: the Strict cookie goes along, so it is the
    // CSRF header (which such a page cannot send) and the content types that refuse these.
    expect(statuses).toEqual({ pin: expect.toBeOneOf([403, 415]), delete: expect.toBeOneOf([403, 404, 405]), upload: expect.toBeOneOf([403, 415]), gc: expect.toBeOneOf([403, 415]), login: 415 });
    // From another site, SameSite=Strict keeps the cookie home, and the post is refused by its
    // Origin before any login is looked at.
    const other = await browser.page(ctx);
    const crossSite = other.page.waitForResponse((r) => r.url().startsWith(`${a}/ui/api/pin`));
    await other.page.goto(`${evilUrl.replace('127.0.0.1', 'attacker.test')}/form-pin`);
    const refused = await crossSite;
    expect([refused.status(), (await refused.request().allHeaders()).cookie]).toEqual([403, undefined]);
    await other.page.close();

    // fetch: no-cors POSTs (opaque to the page, so their status is read off the network) and a
    // DELETE, which needs a preflight airlock does not grant.
    pages.set('/fetch', `<!doctype html><script>
      const a = ${JSON.stringify(a)}, out = {};
      const go = async (k, url, init) => { try { const r = await fetch(url, { credentials: 'include', ...init }); out[k] = r.type + ':' + r.status; } catch (e) { out[k] = 'error:' + e.name; } };
      (async () => {
        await go('pin', a + '/ui/api/pin', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: ${JSON.stringify(JSON.stringify({ name: 'library/app', digest }))} });
        await go('upload', a + '/ui/api/archive?name=team/evil:1', { method: 'POST', mode: 'no-cors', body: new Blob(['ustar']) });
        await go('delete', a + '/ui/api/image?name=team/app&ref=2', { method: 'DELETE', mode: 'cors' });
        await go('read', a + '/ui/api/overview', { mode: 'cors' });
        await fetch('/report', { method: 'POST', body: JSON.stringify(out) });
      })();
    </script>`);
    const wp = await browser.page(ctx);
    const seen: Array<[string, string, number | string]> = [];
    wp.page.on('response', (r) => { if (r.url().startsWith(a)) seen.push([r.request().method(), new URL(r.url()).pathname, r.status()]); });
    wp.page.on('requestfailed', (r) => { if (r.url().startsWith(a)) seen.push([r.method(), new URL(r.url()).pathname, r.failure()?.errorText ?? 'failed']); });
    const mark = site.airlock.logs.length;
    await wp.page.goto(`${evilUrl}/fetch`);
    await expect.poll(() => reports.length).toBe(1);
    // Opaque or blocked: the page learns nothing, and cannot read the admin's overview.
    // The upload is refused before its body is read, so the browser may see the connection end.
    const blind = expect.toBeOneOf(['opaque:0', 'error:TypeError']);
    expect(reports[0]).toEqual({ pin: blind, upload: blind, delete: 'error:TypeError', read: 'error:TypeError' });
    // What airlock answered them, from its request log; the DELETE never got past the preflight.
    const answered = site.airlock.logs.slice(mark).filter((l) => typeof l.url === 'string' && l.url.startsWith('/ui/api/') && l.method !== 'GET' && l.method !== 'HEAD').map((l) => [l.method, String(l.url).split('?')[0], l.status]);
    expect(answered, JSON.stringify(seen)).toEqual([['POST', '/ui/api/pin', 403], ['POST', '/ui/api/archive', expect.toBeOneOf([403, 415])], ['OPTIONS', '/ui/api/image', expect.toBeOneOf([204, 404, 405])]]);

    expect(await snapshot(site.root)).toEqual(before);
    const two = await registry('/v2/team/app/manifests/2', 'HEAD');
    expect([two.status, two.digest]).toEqual([200, site.img.local.manifestDigest]);
    const repo = await request(`${a}/ui/api/repository?name=library/app`, { headers: { authorization: basic(ADMIN) } });
    expect(((await repo.body.json()) as { tags: Array<{ pinned: boolean }> }).tags.map((t) => t.pinned)).toEqual([false]);
    // Still the admin in that browser: the login form post did not swap the session.
    const back = await browser.page(ctx);
    await back.page.goto(ui);
    expect(await api(back.page, 'GET', 'session')).toMatchObject({ json: { user: ADMIN.user } });
  });
});

describe('a user without rights', () => {
  it('sees no forbidden repository: not listed, not found by search, its pages say not found, its API calls are refused', async () => {
    // Control: the admin sees secret/vault.
    const adminView = await request(`${site.airlock.url}/ui/api/repository?name=secret/vault`, { headers: { authorization: basic(ADMIN) } });
    expect([adminView.statusCode, ((await adminView.body.json()) as { name: string }).name]).toEqual([200, 'secret/vault']);

    const wp = await logIn(await browser.context(), VIEWER);
    const { page } = wp;
    await page.getByRole('link', { name: UI.repositories }).click();
    await page.getByRole('link', { name: 'library/app', exact: true }).waitFor();
    const listed = await page.locator('main').innerText();
    expect(listed).toContain('team/app');
    expect(listed).not.toContain('secret/vault');
    await page.getByRole('searchbox', { name: UI.search }).fill('vault');
    await expect.poll(() => page.getByRole('link', { name: 'library/app', exact: true }).count()).toBe(0);
    expect(await page.locator('main').innerText()).not.toContain('secret/vault');

    for (const route of ['repository?name=secret/vault', 'image?name=secret/vault&ref=1']) {
      await page.goto(`${ui}${route}`);
      await page.getByText(UI.notFound).first().waitFor();
      expect(await page.locator('main').innerText()).not.toContain(site.img.vault.manifestDigest);
    }
    // No delete control for a user who may delete nowhere (the API refuses it anyway, below).
    await page.goto(`${ui}repository?name=library/app`);
    await page.getByRole('link', { name: '1.0', exact: true }).waitFor();
    expect(await page.getByRole('button', { name: UI.deleteTag('1.0') }).count()).toBe(0);

    expect(await api(page, 'GET', 'session')).toMatchObject({ json: { user: VIEWER.user, canAdminister: false } });
    const calls = {
      repository: await api(page, 'GET', 'repository?name=secret/vault'),
      image: await api(page, 'GET', 'image?name=secret/vault&ref=1'),
      pinVault: await api(page, 'POST', 'pin', { name: 'secret/vault', digest: site.img.vault.manifestDigest }),
      deleteVault: await api(page, 'DELETE', 'image?name=secret/vault&ref=1'),
      deleteApp: await api(page, 'DELETE', 'image?name=library/app&ref=1.0'),
      pinApp: await api(page, 'POST', 'pin', { name: 'library/app', digest: site.img.app.manifestDigest }),
      gc: await api(page, 'POST', 'gc', { dryRun: true }),
      prefetchVault: await api(page, 'POST', 'prefetch', { image: 'secret/vault:1' }),
    };
    expect(Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, v.status]))).toEqual({
      repository: 404, image: 404, pinVault: expect.toBeOneOf([403, 404]), deleteVault: expect.toBeOneOf([403, 404]), deleteApp: 403, pinApp: 403, gc: 403, prefetchVault: 403,
    });
    const overview = JSON.stringify((await api(page, 'GET', 'overview')).json);
    const repos = JSON.stringify((await api(page, 'GET', 'repositories?limit=500')).json);
    expect(overview + repos).not.toContain('secret/vault');
    expect(repos).toContain('library/app');
    // The store still holds the tag (asked of the files: a registry GET would refill a mirror).
    expect(await readFile(path.join(site.root, 'docker/registry/v2/repositories/library/app/_manifests/tags/1.0/current/link'), 'utf8')).toBe(site.img.app.manifestDigest);
    expect(wp.unexpected([403, 404])).toEqual([]);
  });
});

describe('content security policy', () => {
  it('every page carries the CSP and security headers and renders with no console error, exception or CSP violation', async () => {
    const ctx = await browser.context();
    const wp = await logIn(ctx, ADMIN);
    const { page } = wp;
    const routes = ['', 'repositories', 'repository?name=library/app', 'image?name=library/app&ref=1.0', 'prefetch', 'maintenance'];
    for (const route of routes) {
      const r = await page.goto(`${ui}${route}`);
      const h = r!.headers();
      expect(h['content-security-policy'], route).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'self'; frame-ancestors 'none'");
      expect([h['x-content-type-options'], h['x-frame-options'], h['referrer-policy']]).toEqual(['nosniff', 'DENY', 'no-referrer']);
      await page.locator('main').waitFor();
      await page.waitForLoadState('networkidle', { timeout: 5000 }).catch(() => undefined);
    }
    expect(wp.unexpected()).toEqual([]);
    // The watcher itself: an inline script the CSP refuses is caught as a violation.
    const probe = await browser.page(ctx);
    await probe.page.goto(ui);
    await probe.page.evaluate('{ const s = document.createElement("script"); s.textContent = "window.x = 1"; document.body.append(s); }');
    await expect.poll(() => probe.problems.filter((p) => p.kind === 'csp').length).toBeGreaterThan(0);
  });
});
