import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { ApiError } from './api';
import { bytes } from './format';
import type { Action } from './hooks';
import type { Session } from './types';

export interface SessionState {
  session: Session;
  refresh: () => Promise<Session | undefined>;
}

export const SessionContext = createContext<SessionState | null>(null);

export function useSession(): SessionState {
  const s = useContext(SessionContext);
  if (!s) throw new Error('no session');
  return s;
}

/** May this session change things at all (pins, prefetch-now)? The server decides in the end. */
export const mayWrite = (s: Session): boolean => !s.readOnly && (!s.authEnabled || s.user !== null);

/** An action's outcome, read out by screen readers as it changes. */
export function Status({ action }: { action: Action }) {
  const m = action.message;
  return (
    <p class={m?.error ? 'status error' : 'status'} role={m?.error ? 'alert' : 'status'} aria-live="polite">
      {m ? m.text : null}
    </p>
  );
}

export function Loading({ error, loading }: { error?: ApiError; loading: boolean }) {
  if (error) {
    return (
      <p class="status error" role="alert">
        {error.status === 404 ? 'Not found: ' : ''}
        {error.message}
      </p>
    );
  }
  return loading ? <p class="muted" aria-busy="true">Loading…</p> : null;
}

/** Copies `text`; says so for a moment (and to screen readers). */
export function Copy({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState<'copied' | 'failed' | null>(null);
  const t = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(t.current), []);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone('copied');
    } catch {
      setDone('failed');
    }
    clearTimeout(t.current);
    t.current = setTimeout(() => setDone(null), 2000);
  };
  return (
    <button type="button" class="copy" onClick={() => void copy()} aria-label={label}>
      {done === 'copied' ? 'Copied' : done === 'failed' ? 'Copy failed' : 'Copy'}
      <span class="visually-hidden" aria-live="polite">
        {done === 'copied' ? 'Copied' : ''}
      </span>
    </button>
  );
}

/** A value to copy: shown in full, selectable, with its copy button. */
export function CopyLine({ text, label, block = false }: { text: string; label: string; block?: boolean }) {
  return (
    <div class={block ? 'copyline block' : 'copyline'}>
      {block ? <pre tabIndex={0}>{text}</pre> : <code>{text}</code>}
      <Copy text={text} label={label} />
    </div>
  );
}

/**
 * A modal confirmation (the native <dialog>: focus moves into it, Escape cancels, focus returns).
 * Rendered while `open`; `onClose` is called with the choice.
 */
export function Confirm(props: { title: string; children: ComponentChildren; confirm: string; danger?: boolean; onClose: (ok: boolean) => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const chosen = useRef(false);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (!d.open) d.showModal();
    const onClose = () => {
      if (!chosen.current) props.onClose(false);
    };
    d.addEventListener('close', onClose);
    return () => d.removeEventListener('close', onClose);
  }, []);
  const choose = (ok: boolean) => {
    chosen.current = true;
    ref.current?.close();
    props.onClose(ok);
  };
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" class="confirm">
      <h2 id="confirm-title">{props.title}</h2>
      <div>{props.children}</div>
      <div class="buttons">
        <button type="button" onClick={() => choose(false)}>
          Cancel
        </button>
        <button type="button" class={props.danger ? 'danger' : 'primary'} onClick={() => choose(true)}>
          {props.confirm}
        </button>
      </div>
    </dialog>
  );
}

/** A table that scrolls sideways on a narrow screen instead of breaking the page. */
export function TableWrap({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

/** blobsDeleted → blobs deleted */
const words = (key: string): string => key.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[_-]+/g, ' ').toLowerCase();

/** A report of unknown shape (gc, verify): numbers and strings as a list, the rest as JSON. */
export function Report({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <p class="muted">No report.</p>;
  if (typeof value !== 'object') return <p>{String(value)}</p>;
  const entries = Object.entries(value as Record<string, unknown>);
  const simple = entries.filter(([, v]) => v === null || typeof v !== 'object');
  const complex = entries.filter(([, v]) => v !== null && typeof v === 'object');
  return (
    <div class="report">
      {simple.length > 0 && (
        <dl class="facts">
          {simple.map(([k, v]) => (
            <div key={k}>
              <dt>{words(k)}</dt>
              <dd>{typeof v === 'number' && /bytes|size/i.test(k) ? <span title={`${v.toLocaleString('en')} bytes`}>{bytes(v)}</span> : typeof v === 'number' ? v.toLocaleString('en') : String(v)}</dd>
            </div>
          ))}
        </dl>
      )}
      {complex.map(([k, v]) => (
        <details key={k}>
          <summary>
            {words(k)}
            {Array.isArray(v) ? ` (${v.length})` : ''}
          </summary>
          <pre tabIndex={0}>{JSON.stringify(Array.isArray(v) ? v.slice(0, 200) : v, null, 2)}</pre>
        </details>
      ))}
    </div>
  );
}
