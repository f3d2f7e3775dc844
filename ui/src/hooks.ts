import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, get, type Query } from './api';

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
}

/** GET an endpoint whenever `path` or `query` change; the last answer stays shown while the next loads. */
export function useApi<T>(path: string | null, query?: Query): Loaded<T> {
  const key = path === null ? null : `${path}?${JSON.stringify(query ?? {})}`;
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const q = useRef(query);
  q.current = query;

  useEffect(() => {
    if (path === null) return;
    const ctl = new AbortController();
    setLoading(true);
    get<T>(path, q.current, ctl.signal).then(
      (d) => {
        setData(d);
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (ctl.signal.aborted) return;
        setError(e instanceof ApiError ? e : new ApiError(String(e), 0));
        setLoading(false);
      },
    );
    return () => ctl.abort();
  }, [key, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** Calls `fn` every `ms` while mounted (and while `active`). */
export function useInterval(fn: () => void, ms: number, active = true): void {
  const f = useRef(fn);
  f.current = fn;
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => f.current(), ms);
    return () => clearInterval(t);
  }, [ms, active]);
}

export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · airlock`;
  }, [title]);
}

/** An action's state: running, and its outcome as a message for an aria-live region. */
export interface Action {
  busy: boolean;
  message: { text: string; error: boolean } | null;
  run: (label: string, fn: () => Promise<string | void>) => Promise<void>;
  clear: () => void;
}

export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<Action['message']>(null);
  const run = useCallback(async (label: string, fn: () => Promise<string | void>) => {
    setBusy(true);
    setMessage(null);
    try {
      const done = await fn();
      setMessage({ text: done ?? `${label}: done`, error: false });
    } catch (e) {
      setMessage({ text: `${label}: ${(e as Error).message}`, error: true });
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, message, run, clear: () => setMessage(null) };
}
