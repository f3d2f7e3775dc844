/**
 * The console's maintenance jobs: gc (dry run or real; safe beside serve, as `airlock gc` is)
 * and verify (in the background), one of each at a time, with their last results in memory; and
 * the bundles and archives added, read from the tail of the audit log.
 */
import { open } from 'node:fs/promises';
import type { Bundle } from '../../http/console-service.js';
import { GarbageCollector, type GcReport } from '../../jobs/gc.js';
import { Verifier, type VerifyReport } from '../../jobs/verify.js';
import type { AuditLog } from '../../logging/audit-log.js';
import type { Logger } from '../../logging/logger.js';
import type { Store } from '../../storage/store.js';

/** Only the end of the audit log is read: the recent bundles, at a bounded cost. */
const AUDIT_TAIL = 1 << 20;
const MAX_BUNDLES = 100;
/** As `airlock gc` without --grace: anything younger than an hour is kept. */
const GC_GRACE_MS = 3_600_000;

function conflict(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 409 });
}

export interface MaintenanceDeps {
  store: Store;
  logger: Logger;
  audit?: AuditLog;
  /** push.abandonAfter: upload sessions untouched this long are removed by gc. */
  abandonAfter: number;
  /** Told each repository gc changed (the console's index). */
  changed(name: string): void;
}

export class MaintenanceJobs {
  #gc: Promise<GcReport> | undefined;
  #verify: Promise<VerifyReport> | undefined;
  lastGc: { at: number; dryRun: boolean; report: GcReport } | null = null;
  lastVerify: { at: number; report: VerifyReport | { error: string } } | null = null;

  constructor(private readonly deps: MaintenanceDeps) {}

  get gcRunning(): boolean {
    return this.#gc !== undefined;
  }

  get verifyRunning(): boolean {
    return this.#verify !== undefined;
  }

  async gc(opts: { dryRun: boolean; deleteUntagged?: boolean }): Promise<GcReport> {
    if (this.#gc) throw conflict('a gc is already running');
    const { store, logger, audit } = this.deps;
    this.#gc = new GarbageCollector(store, logger.child({ job: 'gc' })).run({
      dryRun: opts.dryRun,
      deleteUntagged: opts.deleteUntagged === true,
      grace: GC_GRACE_MS,
      abandonAfter: this.deps.abandonAfter,
      onRemoved: async (x) => {
        if (x.name !== undefined) this.deps.changed(x.name);
        await audit?.record({ audit: 'remove', by: 'gc', kind: x.kind, ...(x.name !== undefined ? { stored: x.name } : {}), digest: x.digest, ...(x.bytes !== undefined ? { bytes: x.bytes } : {}) });
      },
    });
    try {
      const report = await this.#gc;
      this.lastGc = { at: Date.now(), dryRun: opts.dryRun, report };
      return report;
    } finally {
      this.#gc = undefined;
    }
  }

  /** Starts a verify (no repair: it only reads); false when one runs already. */
  verify(): boolean {
    if (this.#verify) return false;
    const run = new Verifier(this.deps.store, { repair: false }, this.deps.logger.child({ job: 'verify' })).run();
    this.#verify = run;
    run.then(
      (report) => {
        this.lastVerify = { at: Date.now(), report };
      },
      (e: unknown) => {
        this.deps.logger.error({ err: e }, 'verify from the console failed');
        this.lastVerify = { at: Date.now(), report: { error: (e as Error).message } };
      },
    ).finally(() => {
      this.#verify = undefined;
    });
    return true;
  }

  /** Waits for jobs in progress (shutdown). */
  async settle(): Promise<void> {
    await Promise.allSettled([this.#gc, this.#verify]);
  }
}

/** Bundles frozen or imported and archives loaded, newest first, from the last MiB of the audit log. */
export async function recentBundles(file: string | undefined): Promise<Bundle[]> {
  if (file === undefined || file === '-') return [];
  let text: string;
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - AUDIT_TAIL);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      text = buf.toString('utf8');
      // Started mid-file: the first line is a fragment.
      if (start > 0) text = text.slice(text.indexOf('\n') + 1);
    } finally {
      await fh.close();
    }
  } catch {
    return [];
  }
  return parseBundles(text);
}

export function parseBundles(text: string): Bundle[] {
  const out: Bundle[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"audit"')) continue;
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const event = j.audit;
    if (event !== 'freeze' && event !== 'import' && event !== 'load') continue;
    const at = typeof j.time === 'string' ? Date.parse(j.time) : typeof j.time === 'number' ? j.time : NaN;
    const archives = Array.isArray(j.archives) ? j.archives.filter((a): a is string => typeof a === 'string') : [];
    const name = event === 'load' ? archives.join(', ') : typeof j.bundle === 'string' ? j.bundle : '';
    out.push({
      at: Number.isFinite(at) ? at : 0, event, name,
      images: Array.isArray(j.images) ? j.images.length : 0,
      signer: typeof j.signer === 'string' ? j.signer : null,
    });
  }
  return out.reverse().slice(0, MAX_BUNDLES);
}
