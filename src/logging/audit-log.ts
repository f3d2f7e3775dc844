/**
 * The audit log (audit.file): one JSON line per event that a security team asks about, appended
 * and written before the response that caused it ends. Records are built from named fields
 * only, never from headers or configuration, so no credential can reach the file.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pino, type Logger } from 'pino';

/** Who asked: the logged-in user (absent: anonymous) and the client's address. */
export interface AuditActor {
  user?: string;
  address?: string;
}

/** A request's repository: the name as the client wrote it (with ?ns=) and the stored one. */
export interface AuditName {
  name: string;
  ns?: string;
  stored: string;
}

export type AuditRecord =
  /** A manifest GET: served (with the cache outcome) or refused (403, with the reason). */
  | (AuditActor & AuditName & { audit: 'pull'; reference: string; digest?: string; cache?: string; status: number; reason?: string })
  | (AuditActor & AuditName & { audit: 'push'; reference: string; digest: string })
  | (AuditActor & AuditName & { audit: 'delete'; kind: 'manifest' | 'tag' | 'blob'; reference: string })
  /** Revalidation found the upstream's tag on another manifest than the stored one. */
  | { audit: 'tag-moved'; stored: string; tag: string; upstream: string; from: string; to: string }
  | { audit: 'import'; bundle: string; sums: string; images: string[]; forced: string[]; signer?: string }
  | { audit: 'freeze'; bundle: string; sums: string; images: string[]; since?: string }
  /** `airlock load`, or an archive uploaded over HTTP (with who uploaded it). */
  | (AuditActor & { audit: 'load'; archives: string[]; images: string[]; forced: string[] })
  /** Images downloaded as an archive over HTTP. */
  | (AuditActor & { audit: 'save'; images: string[]; format: string })
  /** A removal by gc or eviction. */
  | { audit: 'remove'; by: 'gc' | 'evict'; kind: 'manifest' | 'blob' | 'image'; stored?: string; digest: string; bytes?: number }
  | (AuditActor & { audit: 'login-failed'; reason: string })
  | { audit: 'reload'; outcome: 'applied' | 'refused'; restart?: string[]; error?: string };

export type AuditEvent = AuditRecord['audit'];

/** Where lines go: a file opened for appending, or the log's own destination ("-"). */
interface Sink {
  write(text: string): Promise<void>;
  close(): Promise<void>;
}

async function fileSink(file: string): Promise<Sink> {
  await mkdir(path.dirname(file), { recursive: true });
  const fh: FileHandle = await open(file, 'a', 0o640);
  return {
    // appendFile on a handle loops until every byte is written; O_APPEND keeps lines of
    // processes sharing the file (serve and a gc beside it) whole.
    write: (text) => fh.appendFile(text),
    close: () => fh.close(),
  };
}

/**
 * "-": through the logger's own stream, so audit lines and log lines never interleave mid-line
 * on a shared stdout (a container's log collector tells them apart by the `audit` key).
 */
function loggerSink(logger: Logger): Sink {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    { write(s: string): unknown; flush?(cb?: (e?: Error) => void): void } | undefined;
  if (!stream) throw new Error('audit.file "-": the logger has no stream to write to');
  return {
    write: (text) =>
      new Promise<void>((resolve) => {
        stream.write(text);
        if (typeof stream.flush !== 'function') return resolve();
        try {
          stream.flush(() => resolve());
        } catch {
          // A synchronous stream (or one already flushing) has nothing to wait for.
          resolve();
        }
      }),
    close: async () => undefined,
  };
}

export class AuditLog {
  #sink: Sink;
  #target: string;
  #pending: string[] = [];
  #waiters: Array<() => void> = [];
  #flushing: Promise<void> | undefined;
  /** One error line per run of failures, not one per record. */
  #failing = false;

  private constructor(
    sink: Sink,
    target: string,
    private readonly logger: Logger,
    private readonly onWriteError?: () => void,
  ) {
    this.#sink = sink;
    this.#target = target;
  }

  /** Opens audit.file ("-": the log's stream). A file that cannot be opened is a clear startup error. */
  static async open(target: string, logger: Logger, onWriteError?: () => void): Promise<AuditLog> {
    return new AuditLog(await AuditLog.#sinkFor(target, logger), target, logger, onWriteError);
  }

  static async #sinkFor(target: string, logger: Logger): Promise<Sink> {
    if (target === '-') return loggerSink(logger);
    try {
      return await fileSink(target);
    } catch (e) {
      throw new Error(`audit.file: cannot open ${target}: ${(e as Error).message}`, { cause: e });
    }
  }

  get target(): string {
    return this.#target;
  }

  /**
   * Appends one line; resolves once it is written (to the file or the log stream). Concurrent
   * records are written together. A failed write is logged and counted, never thrown: serving
   * goes on when the disk holding the audit log is full.
   */
  record(r: AuditRecord): Promise<void> {
    this.#pending.push(`${JSON.stringify({ time: new Date().toISOString(), ...r })}\n`);
    const written = new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#flushing ??= this.#flush();
    return written;
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const text = this.#pending.join('');
      const waiters = this.#waiters;
      this.#pending = [];
      this.#waiters = [];
      try {
        await this.#sink.write(text);
        this.#failing = false;
      } catch (e) {
        this.onWriteError?.();
        if (!this.#failing) this.logger.error({ err: { message: (e as Error).message }, file: this.#target }, 'could not write the audit log');
        this.#failing = true;
      }
      for (const w of waiters) w();
    }
    this.#flushing = undefined;
  }

  /**
   * SIGHUP: opens the file again by its name (logrotate moved the old one away), or a new
   * target. Lines recorded meanwhile wait and go to the new file; a failure keeps the old one.
   */
  async reopen(target: string = this.#target): Promise<void> {
    const next = await AuditLog.#sinkFor(target, this.logger);
    while (this.#flushing) await this.#flushing;
    const old = this.#sink;
    this.#sink = next;
    this.#target = target;
    await old.close();
  }

  async close(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    await this.#sink.close();
  }
}
