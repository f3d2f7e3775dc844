import { useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, BASE, page, request, setCsrf } from './api';
import { useSession } from './components';
import { useTitle } from './hooks';

/** Only a page of this console: never send a user elsewhere after a login. */
function safeNext(next: string | undefined): string {
  return next && next.startsWith(BASE) && !next.startsWith('//') && !next.startsWith(page('login')) ? next : BASE;
}

export function Login() {
  useTitle('Log in');
  const { session, refresh } = useSession();
  const { query, route } = useLocation();
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const next = safeNext(query.next);
  // A 401 brought us here: the session shown may have expired meanwhile.
  useEffect(() => void refresh(), []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const r = await request<{ user: string; csrf: string }>('POST', 'login', { json: { user, password }, noLoginRedirect: true });
      setCsrf(r.csrf);
      await refresh();
      route(next);
    } catch (err) {
      const status = err instanceof ApiError ? err.status : 0;
      setError(status === 401 ? 'Wrong user name or password.' : status === 429 ? `Too many attempts: ${(err as Error).message}` : (err as Error).message);
      setBusy(false);
    }
  };

  if (!session.authEnabled) {
    return (
      <>
        <h1>Log in</h1>
        <p>
          This airlock has no logins (auth.htpasswd is not set): everyone may use the console. <a href={next}>Continue</a>.
        </p>
      </>
    );
  }
  return (
    <div class="login">
      <h1>Log in</h1>
      {session.user !== null && (
        <p>
          You are logged in as <strong>{session.user}</strong>. <a href={next}>Continue</a>, or log in as someone else.
        </p>
      )}
      <form onSubmit={(e) => void submit(e)} aria-describedby={error ? 'login-error' : undefined}>
        <label for="login-user">User</label>
        <input id="login-user" name="username" autocomplete="username" required value={user} onInput={(e) => setUser(e.currentTarget.value)} />
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={busy}>
          Log in
        </button>
        <p id="login-error" class="status error" role="alert">
          {error ?? ''}
        </p>
      </form>
    </div>
  );
}
