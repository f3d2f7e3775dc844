/**
 * Every request of the console: URLs from document.baseURI (the server sets <base> to ui.path),
 * the session's CSRF header on every change, OCI error JSON turned into an ApiError with the
 * server's message, and a 401 sends the user to the login page (keeping where they were).
 */
import type { Session } from './types';

/** The console's root path, with its trailing slash: /ui/ unless ui.path says otherwise. */
export const BASE = new URL(document.baseURI).pathname.replace(/\/?$/, '/');

type QueryValue = string | number | boolean | undefined | null | string[];
export type Query = Record<string, QueryValue>;

function search(query?: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** A page of the console, as an absolute path for links and the router. */
export function page(path: string, query?: Query): string {
  return BASE + path + search(query);
}

/** An endpoint of the console's API, as an absolute URL. */
export function apiUrl(path: string, query?: Query): string {
  return new URL(`api/${path}${search(query)}`, document.baseURI).href;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

let csrf: string | null = null;
let navigate: (url: string) => void = (url) => location.assign(url);

export function setCsrf(token: string | null): void {
  csrf = token;
}

/** The router's navigation, so a 401 changes page without a reload. */
export function setNavigate(fn: (url: string) => void): void {
  navigate = fn;
}

/** Where a 401 sends the user: the login page, back here afterwards. */
export function loginUrl(): string {
  const here = location.pathname + location.search;
  const next = here.startsWith(BASE) && !here.startsWith(page('login')) ? here : undefined;
  return page('login', { next });
}

export interface RequestOptions {
  query?: Query;
  /** JSON-encoded, sent as application/json. */
  json?: unknown;
  /** Sent as is (an upload), with `contentType`. */
  body?: Blob;
  contentType?: string;
  signal?: AbortSignal;
  /** Answer 401 with an error instead of going to the login page (the login form itself). */
  noLoginRedirect?: boolean;
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`.trim();
  let code: string | undefined;
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text) as { errors?: { code?: string; message?: string }[]; message?: string };
      const e = j.errors?.[0];
      if (e?.message) message = e.message;
      else if (j.message) message = j.message;
      code = e?.code;
    } catch {
      if (text && text.length < 300) message = text;
    }
  } catch {
    // No body: the status line says enough.
  }
  return new ApiError(message, res.status, code);
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let body: BodyInit | undefined;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.body) {
    headers['content-type'] = opts.contentType ?? 'application/octet-stream';
    body = opts.body;
  }
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['x-airlock-csrf'] = csrf;
  let res: Response;
  try {
    res = await fetch(apiUrl(path, opts.query), { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(`airlock did not answer: ${(e as Error).message}`, 0);
  }
  if (res.status === 401 && !opts.noLoginRedirect) {
    navigate(loginUrl());
    throw await errorOf(res);
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204 || res.status === 202) {
    // A 202 may carry a body; take it when it is JSON.
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
  return (await res.json()) as T;
}

export const get = <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', path, { query, signal });

export async function loadSession(): Promise<Session> {
  const s = await request<Session>('GET', 'session', { noLoginRedirect: true });
  setCsrf(s.csrf);
  return s;
}
