/**
 * A real browser for the web console's tests and the README screenshots: Debian's chromium
 * (installed by scripts/ensure-test-tools.sh), driven by playwright-core over its executablePath,
 * headless. Each test gets a context of its own (its own cookies); every page is watched for
 * console errors, uncaught exceptions and Content-Security-Policy violations.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';

export const CHROMIUM = process.env.AIRLOCK_CHROMIUM ?? '/usr/bin/chromium';

/** Bounds on every wait, so a console that never answers fails a test instead of hanging it. */
export const TIMEOUTS = { launch: 30_000, action: 10_000, navigation: 15_000 } as const;

export interface PageProblem {
  kind: 'console' | 'pageerror' | 'csp';
  text: string;
  url: string;
}

export interface WatchedPage {
  page: Page;
  /** Console errors, uncaught exceptions and CSP violations seen so far, in order. */
  problems: PageProblem[];
  /**
   * The problems left after dropping Chromium's "Failed to load resource: … status of N" lines
   * for the statuses a flow expects (a 401 before login, a 404 for a forbidden repository), and
   * for /favicon.ico.
   */
  unexpected(allowStatuses?: number[]): PageProblem[];
}

export interface TestBrowser {
  browser: Browser;
  /** A fresh context (no cookies), closed by close(). */
  context(opts?: BrowserContextOptions): Promise<BrowserContext>;
  /** A watched page in `context` (a fresh context when none is given). */
  page(context?: BrowserContext): Promise<WatchedPage>;
  /** A PNG of the page (or of its full height) at `file`; returns its size in bytes. */
  screenshot(page: Page, file: string, opts?: { fullPage?: boolean }): Promise<number>;
  close(): Promise<void>;
}

// Reports CSP violations from inside the page. Init scripts run outside the page's CSP.
const CSP_LISTENER = `addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
}, true);`;

export async function startBrowser(opts: { args?: string[] } = {}): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: TIMEOUTS.launch,
    // --no-sandbox: the tests may run as root, where chromium refuses its sandbox. The rest keep
    // a headless run on a small machine quiet and independent of /dev/shm, GPUs and the network.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...(opts.args ?? [])],
  });
  const contexts = new Set<BrowserContext>();

  const context = async (o: BrowserContextOptions = {}): Promise<BrowserContext> => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...o });
    ctx.setDefaultTimeout(TIMEOUTS.action);
    ctx.setDefaultNavigationTimeout(TIMEOUTS.navigation);
    await ctx.addInitScript(CSP_LISTENER);
    contexts.add(ctx);
    ctx.on('close', () => contexts.delete(ctx));
    return ctx;
  };

  const page = async (ctx?: BrowserContext): Promise<WatchedPage> => {
    const p = await (ctx ?? (await context())).newPage();
    const problems: PageProblem[] = [];
    p.on('console', (m) => {
      if (m.type() !== 'error') return;
      const text = m.text();
      problems.push({ kind: text.startsWith('CSP violation') || text.includes('Content Security Policy') ? 'csp' : 'console', text, url: m.location().url });
    });
    p.on('pageerror', (e) => problems.push({ kind: 'pageerror', text: `${e.name}: ${e.message}`, url: p.url() }));
    return {
      page: p,
      problems,
      unexpected: (allow = []) => problems.filter((x) => {
        const status = /Failed to load resource: the server responded with a status of (\d{3})/.exec(x.text)?.[1];
        // The browser's own guess at /favicon.ico (outside the console, when a page names no
        // icon) is not the page's doing; it comes at no fixed time, so counting it would be flaky.
        if (status && new URL(x.url || 'about:blank').pathname === '/favicon.ico') return false;
        return !(x.kind === 'console' && status && allow.includes(Number(status)));
      }),
    };
  };

  return {
    browser,
    context,
    page,
    screenshot: async (p, file, o = {}) => {
      await mkdir(path.dirname(file), { recursive: true });
      const png = await p.screenshot({ path: file, type: 'png', fullPage: o.fullPage ?? false, animations: 'disabled', caret: 'hide', timeout: TIMEOUTS.action });
      return png.length;
    },
    close: async () => {
      for (const c of [...contexts]) await c.close().catch(() => undefined);
      await browser.close();
    },
  };
}
