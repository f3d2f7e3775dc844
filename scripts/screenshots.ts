/**
 * The README's screenshots of the web console (npm run screenshots): a seeded airlock as the
 * browser tests start it (images pulled through it for real by skopeo, a local name pushed),
 * Debian's chromium through playwright-core, PNGs into docs/screenshots/. The overview is taken
 * while a throttled cold fill runs, so it shows one. Needs `npm run build` first (dist/ui).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { BrowserContext, Page } from 'playwright-core';
import { startBrowser } from '../test/helpers/browser.js';
import { ADMIN, basic, startConsoleSite } from '../test/helpers/console-site.js';

const OUT = path.join(fileURLToPath(new URL('..', import.meta.url)), 'docs', 'screenshots');
/** A PNG above this is too heavy for a README. */
const MAX_BYTES = 250 * 1024;

async function main(): Promise<void> {
  const started = Date.now();
  const site = await startConsoleSite({ more: true, bigLayer: 48 << 20 });
  const browser = await startBrowser();
  const ui = `${site.airlock.url}/ui/`;
  const shots: Array<[string, number]> = [];
  const shoot = async (page: Page, name: string) => {
    // Charts and lists settle after their first fetches; the event stream never goes idle.
    await page.locator('main').waitFor();
    await page.waitForTimeout(700);
    const file = path.join(OUT, `${name}.png`);
    await browser.screenshot(page, file);
    shots.push([name, (await stat(file)).size]);
  };
  const logIn = async (ctx: BrowserContext): Promise<Page> => {
    const page = await ctx.newPage();
    await page.goto(`${ui}login`);
    await page.getByLabel('User', { exact: true }).fill(ADMIN.user);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    return page;
  };
  try {
    // Warm pulls, so the hit ratio has hits to show.
    for (const ref of ['library/app:1.0', 'library/web:1.27', 'ghcr.io/org/tool:2.1', 'library/app:1.0']) await site.pull(`docker://${site.airlock.host}/${ref}`);
    // Something for the maintenance page to show: a garbage collection's dry run.
    const gc = await request(`${site.airlock.url}/ui/api/gc`, { method: 'POST', headers: { authorization: basic(ADMIN), 'content-type': 'application/json' }, body: '{"dryRun":true}' });
    await gc.body.dump();

    const login = await (await browser.context()).newPage();
    await login.goto(`${ui}login`);
    await login.getByLabel('User', { exact: true }).waitFor();
    await shoot(login, 'login');

    const page = await logIn(await browser.context());
    // A cold fill at about 4 MiB/s, in progress while the overview is taken.
    site.up.proxy.faults.slowBlobs = 4 << 20;
    const fill = site.pull(`docker://${site.airlock.host}/library/big:1`);
    await page.getByRole('progressbar').first().waitFor({ timeout: 15_000 });
    await page.waitForTimeout(2000);
    await shoot(page, 'overview');
    const dark = await logIn(await browser.context({ colorScheme: 'dark' }));
    await shoot(dark, 'overview-dark');
    const phone = await logIn(await browser.context({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }));
    await shoot(phone, 'overview-phone');
    await fill;
    site.up.proxy.reset();

    await page.goto(`${ui}repositories`);
    await page.getByRole('link', { name: 'library/app', exact: true }).waitFor();
    await shoot(page, 'repositories');
    await page.goto(`${ui}image?name=library/web&ref=1.27`);
    await page.getByRole('heading', { name: 'Layers' }).waitFor();
    await shoot(page, 'image');
    await page.goto(`${ui}maintenance`);
    await shoot(page, 'maintenance');
  } finally {
    await browser.close();
    await site.stop();
  }
  for (const [name, size] of shots) console.log(`docs/screenshots/${name}.png ${Math.round(size / 1024)} KiB`);
  console.log(`screenshots: ${shots.length} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const heavy = shots.filter(([, size]) => size > MAX_BYTES);
  if (heavy.length) throw new Error(`over ${MAX_BYTES / 1024} KiB: ${heavy.map(([n]) => n).join(', ')}`);
}

main().catch((e: unknown) => {
  console.error(`screenshots: ${(e as Error).message}`);
  process.exit(1);
});
