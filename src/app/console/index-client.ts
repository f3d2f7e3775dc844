/**
 * The console's repository index as the serving thread sees it: a worker thread
 * (index-worker.ts) holds the index, started on the console's first use, so a server whose
 * console nobody opens never builds one, and one whose console is open keeps the index's small
 * objects out of the heap the pull path allocates in. The pull figures (AccessTimes) stay here,
 * where pulls write them: they are added to what the worker answers.
 */
import { Worker } from 'node:worker_threads';
import type { Config } from '../../config/schema.js';
import type { MayPull, RepoDetail, RepoPage, RepoQuery } from '../../http/console-service.js';
import type { Logger } from '../../logging/logger.js';
import type { AccessTimes } from '../../storage/access-times.js';
import { listPage, pullFigures, type PullFigures, type RowTable } from './repo-list.js';

export type Described = { kind: 'local' | 'mirror'; upstream: string | null };

type Request =
  | { op: 'scan' | 'reloadPins' | 'totals' }
  | { op: 'rows'; q?: string }
  | { op: 'detail' | 'refresh'; name: string }
  | { op: 'imageFacts'; name: string; digest: string };

export type ToWorker =
  | ({ t: 'req'; id: number } & Request)
  | { t: 'described'; id: number; value: Described }
  | { t: 'changed'; name: string }
  | { t: 'pinned'; name: string; digest: string; on: boolean };

export type FromWorker =
  | { t: 'res'; id: number; value?: unknown; error?: string }
  | { t: 'describe'; id: number; name: string }
  | { t: 'log'; msg: string; err: string };

/** The worker's module beside this one; from the sources (tests), loaded through tsx. */
function spawn(data: unknown): Worker {
  const url = new URL(`./index-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  if (url.pathname.endsWith('.js')) return new Worker(url, { workerData: data });
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}

const STOP_WAIT_MS = 5000;

export interface IndexClientDeps {
  config: Config;
  accessTimes: AccessTimes;
  describe(name: string): Promise<Described>;
  logger: Logger;
  rescanMs: number;
}

export class IndexClient {
  #worker: Worker | undefined;
  #nextId = 0;
  #stopped = false;
  readonly #waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  readonly #figures: PullFigures;

  constructor(private readonly deps: IndexClientDeps) {
    this.#figures = pullFigures((n) => deps.accessTimes.of(n));
  }

  /** Whether the worker runs (the console has been used since the start or the last failure). */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const { config, rescanMs, logger } = this.deps;
    const w = spawn({ config, rescanMs });
    w.on('message', (m: FromWorker) => this.#message(w, m));
    const gone = (why: string) => {
      if (this.#worker !== w) return;
      this.#worker = undefined;
      for (const p of this.#waiting.values()) p.reject(new Error(`the console's index stopped: ${why}`));
      this.#waiting.clear();
    };
    w.on('error', (e) => {
      logger.warn({ err: e.message }, "the console's index failed; it starts again on the next request");
      gone(e.message);
    });
    w.on('exit', (code) => gone(`exit code ${code}`));
    // After the listeners: adding a 'message' listener refs the worker again. The serving
    // process ends when its server does, whatever the index is doing.
    w.unref();
    this.#worker = w;
    return w;
  }

  #message(w: Worker, m: FromWorker): void {
    if (m.t === 'res') {
      const p = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.value);
    } else if (m.t === 'describe') {
      this.deps.describe(m.name).then(
        (value) => w.postMessage({ t: 'described', id: m.id, value } satisfies ToWorker),
        () => w.postMessage({ t: 'described', id: m.id, value: { kind: 'local', upstream: null } } satisfies ToWorker),
      );
    } else if (m.t === 'log') this.deps.logger.warn({ err: m.err }, m.msg);
  }

  #ask<T>(req: Request): Promise<T> {
    // Shutting down: a request that comes late must not start a new worker (and a first walk).
    if (this.#stopped) return Promise.reject(new Error('the console is shutting down'));
    const w = this.#start();
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      w.postMessage({ t: 'req', id, ...req } satisfies ToWorker);
    });
  }

  /** Before the first use nothing is told: the worker's first walk reads the store as it is then. */
  changed(name: string): void {
    this.#worker?.postMessage({ t: 'changed', name } satisfies ToWorker);
  }

  setPinned(name: string, digest: string, on: boolean): void {
    this.#worker?.postMessage({ t: 'pinned', name, digest, on } satisfies ToWorker);
  }

  async reloadPins(): Promise<void> {
    if (this.#worker) await this.#ask({ op: 'reloadPins' });
  }

  /** A whole walk now (after a prefetch run), when the index runs (else its first walk comes later). */
  async scan(): Promise<void> {
    if (this.#worker) await this.#ask({ op: 'scan' });
  }

  async refresh(name: string): Promise<void> {
    if (this.#worker) await this.#ask({ op: 'refresh', name });
  }

  totals(): Promise<{ images: number; repositories: number }> {
    return this.#ask({ op: 'totals' });
  }

  async list(query: RepoQuery, may: MayPull): Promise<RepoPage> {
    const rows = await this.#ask<RowTable>({ op: 'rows', ...(query.q ? { q: query.q } : {}) });
    return listPage(rows, query, may, this.#figures);
  }

  async detail(name: string): Promise<RepoDetail | undefined> {
    const d = await this.#ask<RepoDetail | undefined>({ op: 'detail', name });
    if (!d) return undefined;
    const last = (digest: string) => this.deps.accessTimes.get(name, digest) ?? null;
    for (const t of d.tags) t.lastPulled = last(t.digest);
    for (const u of d.untagged) u.lastPulled = last(u.digest);
    return d;
  }

  imageFacts(name: string, digest: string): Promise<{ size: number; pinned: boolean }> {
    return this.#ask({ op: 'imageFacts', name, digest });
  }

  /** Lets the requests in flight finish (for at most STOP_WAIT_MS), then ends the worker. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const w = this.#worker;
    if (!w) return;
    const deadline = Date.now() + STOP_WAIT_MS;
    while (this.#waiting.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.#worker = undefined;
    for (const p of this.#waiting.values()) p.reject(new Error("the console's index stopped"));
    this.#waiting.clear();
    await w.terminate();
  }
}
