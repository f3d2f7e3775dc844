/**
 * The composition root of the offline commands (freeze, import, verify, gc, du): the
 * configuration, a logger on stderr (their stdout is their report), the store, the audit log,
 * and each job built from them. They work on the store directly (no upstream is contacted) and
 * may run beside a serving airlock: every write they make is atomic.
 */
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ArchiveLoader } from '../jobs/archive-load.js';
import { ArchiveSaver } from '../jobs/archive-save.js';
import { Freezer } from '../jobs/freeze.js';
import { GarbageCollector } from '../jobs/gc.js';
import { Importer } from '../jobs/import.js';
import { TrustedKeys } from '../jobs/signature.js';
import { Verifier } from '../jobs/verify.js';
import { AuditLog } from '../logging/audit-log.js';
import { createLogger, type Logger } from '../logging/logger.js';
import { storedNameJudge, UpstreamPolicy } from '../mirror/policy.js';
import { imageTarget } from '../mirror/router.js';
import type { ImageReference } from '../oci/reference.js';
import { AccessTimes } from '../storage/access-times.js';
import { ReadOnlyStoreError, readOnlyMessage, type ReadOnlyReason } from '../storage/read-only-driver.js';
import type { Store } from '../storage/store.js';
import { loadNaming, offlineRouter } from './load-naming.js';
import { openStore } from './store.js';

export interface OfflineJobs {
  config: Config;
  logger: Logger;
  store: Store;
  /** audit.file, when set: the same file serve appends to (whole lines from both stay whole). */
  audit?: AuditLog;
  /**
   * Why the store is read-only (storage.readOnly, a read-only root); absent when writable. The
   * jobs that write to it (importer, collector, verifier with repair) refuse to start then.
   */
  readOnly?: ReadOnlyReason;
  /** Throws the one-line refusal (ReadOnlyStoreError: exit 2) when the store is read-only; `what` says what would have written. */
  requireWritable(what: string): void;
  /** The stored name of an image reference, routed as a pull of it would be (`alpine` is library/alpine). */
  storeName(ref: ImageReference): string;
  freezer(): Freezer;
  /** `trust`: public key files besides import.trust; with any, only bundles they signed import. */
  importer(opts: { force: boolean; trust?: string[]; onProgress?(done: number, total: number): void }): Promise<Importer>;
  verifier(opts: { repair: boolean; onProgress?(blobs: number, bytes: number): void }): Verifier;
  /** `airlock load`: names routed as a pull would be, judged by the allow and deny lists as import's are. */
  loader(opts: { force: boolean; onProgress?(done: number, total: number): void }): ArchiveLoader;
  saver(): ArchiveSaver;
  collector(): GarbageCollector;
  /** Last-served times of images, loaded. */
  accessTimes(): Promise<AccessTimes>;
  close(): Promise<void>;
}

export async function openOfflineJobs(configFile: string): Promise<OfflineJobs> {
  const config = await loadConfig(configFile);
  const logger = createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level, destination: 2 });
  const { store, readOnly } = await openStore(config);
  // The refusal of a job that would write, before it touches anything (CLI: one line, exit 2).
  const writable = (what: string): void => {
    if (readOnly) throw new ReadOnlyStoreError(readOnlyMessage(readOnly, what));
  };
  const audit = config.audit.file === undefined ? undefined : await AuditLog.open(config.audit.file, logger);
  // Names are judged as a pull of them would be routed; no upstream is dialled.
  const router = offlineRouter(config);
  return {
    config,
    logger,
    store,
    audit,
    readOnly,
    requireWritable: writable,
    storeName: (ref) => router.route(imageTarget(ref, config.defaultUpstream)).storeName,
    freezer: () => new Freezer(store, logger),
    importer: async ({ force, trust: extra, onProgress }) => {
      writable('airlock import would write the bundle into it; import into a writable copy');
      const trust = await TrustedKeys.read([...config.import.trust, ...(extra ?? [])]);
      // Imported names become local, beyond the upstreams' allow and deny lists: they judge the
      // bundle's names as a pull of them would be routed.
      const policy = UpstreamPolicy.fromConfig(config);
      const judged = policy.empty ? undefined : { judge: storedNameJudge(policy, router), mode: policy.mode, force };
      return new Importer(store, { maxManifestSize: config.http.maxManifestSize, policy: judged, trust, onProgress }, logger);
    },
    verifier: (opts) => {
      if (opts.repair) writable('verify --repair would move corrupt blobs out of it; run verify without --repair');
      return new Verifier(store, opts, logger);
    },
    loader: ({ force, onProgress }) => {
      writable('airlock load would write the images into it; load into a writable copy');
      return new ArchiveLoader(store, { maxManifestSize: config.http.maxManifestSize, ...loadNaming(config, router, force), onProgress }, logger);
    },
    saver: () => new ArchiveSaver(store, logger),
    collector: () => {
      writable('airlock gc would delete from it; run it where the store is writable');
      return new GarbageCollector(store, logger);
    },
    accessTimes: async () => {
      const times = new AccessTimes(store.driver);
      await times.load();
      return times;
    },
    close: async () => {
      await audit?.close();
      store.driver.close?.();
    },
  };
}
