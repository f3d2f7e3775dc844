/**
 * The airlock web console: a client-side app (no server rendering) under the server's <base>.
 * The session decides what is shown; the server decides what is allowed.
 */
import 'uplot/dist/uPlot.min.css';
import '../styles.css';
import { render } from 'preact';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, BASE, loadSession, page, request, setCsrf, setNavigate } from './api';
import { SessionContext, useSession } from './components';
import { ImagePage } from './image';
import { Login } from './login';
import { MaintenancePage } from './maintenance';
import { Overview } from './overview';
import { PrefetchPage } from './prefetch';
import { RepositoriesPage } from './repositories';
import { RepositoryPage } from './repository';
import type { Session } from './types';

const NAV: [string, string][] = [
  ['', 'Overview'],
  ['repositories', 'Repositories'],
  ['prefetch', 'Prefetch'],
  ['maintenance', 'Maintenance'],
];

function Header() {
  const { session, refresh } = useSession();
  const { path, route } = useLocation();
  const [busy, setBusy] = useState(false);
  const logout = async () => {
    setBusy(true);
    try {
      await request('POST', 'logout', { noLoginRedirect: true });
    } catch {
      // Logged out already (an expired session): the login page either way.
    }
    setCsrf(null);
    await refresh();
    setBusy(false);
    route(page('login'));
  };
  // A repository's and an image's pages belong to Repositories.
  const current = (p: string) =>
    p === '' ? path === BASE || `${path}/` === BASE : path === BASE + p || (p === 'repositories' && (path === `${BASE}repository` || path === `${BASE}image`));
  return (
    <header class="top">
      <a class="brand" href={page('')}>
        airlock
      </a>
      <nav aria-label="Main">
        <ul>
          {NAV.map(([p, label]) => (
            <li key={p}>
              <a href={page(p)} aria-current={current(p) ? 'page' : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="who">
        {session.user !== null ? (
          <>
            <span class="user" title="Logged in as">
              {session.user}
            </span>
            <button type="button" onClick={() => void logout()} disabled={busy}>
              Log out
            </button>
          </>
        ) : session.authEnabled ? (
          <a href={page('login')}>Log in</a>
        ) : null}
      </div>
    </header>
  );
}

function NotFound() {
  return (
    <>
      <h1>Not found</h1>
      <p>
        There is no such page. <a href={page('')}>Back to the overview</a>.
      </p>
    </>
  );
}

function Shell() {
  const { route, url } = useLocation();
  useEffect(() => setNavigate((u) => route(u)), [route]);
  // Focus the page's heading after a navigation, so keyboard and screen-reader users start there.
  const [first, setFirst] = useState(true);
  useEffect(() => {
    if (first) return setFirst(false);
    const h = document.querySelector<HTMLElement>('main h1');
    if (h) {
      h.tabIndex = -1;
      h.focus({ preventScroll: true });
    }
  }, [url]);
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <Header />
      <main id="main" tabIndex={-1}>
        <Router>
          <Route path={BASE} component={Overview} />
          <Route path={`${BASE}repositories`} component={RepositoriesPage} />
          <Route path={`${BASE}repository`} component={RepositoryPage} />
          <Route path={`${BASE}image`} component={ImagePage} />
          <Route path={`${BASE}prefetch`} component={PrefetchPage} />
          <Route path={`${BASE}maintenance`} component={MaintenancePage} />
          <Route path={`${BASE}login`} component={Login} />
          <Route default component={NotFound} />
        </Router>
      </main>
      <Footer />
    </>
  );
}

function Footer() {
  const { session } = useSession();
  return (
    <footer class="bottom">
      airlock {session.version}
      {session.readOnly ? ' · read-only store' : ''}
    </footer>
  );
}

function App() {
  const [session, setSession] = useState<Session>();
  const [error, setError] = useState<string>();
  const refresh = useCallback(async () => {
    try {
      const s = await loadSession();
      setSession(s);
      setError(undefined);
      return s;
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      return undefined;
    }
  }, []);
  useEffect(() => void refresh(), []);
  if (!session) {
    return (
      <main id="main" class="boot">
        <h1>airlock</h1>
        {error ? (
          <p class="status error" role="alert">
            The console could not reach airlock: {error}
          </p>
        ) : (
          <p class="muted">Loading…</p>
        )}
      </main>
    );
  }
  return (
    <SessionContext.Provider value={{ session, refresh }}>
      <LocationProvider scope={BASE}>
        <Shell />
      </LocationProvider>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
