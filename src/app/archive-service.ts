/**
 * The serving side of image archives (http/plugins/archives.ts): `save` and `load` on the
 * running store, named as a pull of the same reference would be (compose.ts's router), under
 * the same allow and deny lists as `airlock load`.
 */
import type { Config } from '../config/schema.js';
import type { ArchiveService } from '../http/plugins/archives.js';
import { BundleError } from '../jobs/bundle-error.js';
import type { Logger } from '../logging/logger.js';
import { ManifestUnknownError } from '../oci/errors.js';
import { parsePlatform } from '../oci/manifest.js';
import { formatImageReference, parseImageReference } from '../oci/reference.js';
import { loadNaming, offlineRouter } from './load-naming.js';
import { pushOptions } from './options.js';
import { FilesystemDriver } from '../storage/filesystem-driver.js';
import type { Store } from '../storage/store.js';

/** `docker save | gzip` of real images unpacks to 1-4x; a decompression bomb to 1000x. */
const UPLOAD_MAX_RATIO = 64;
const UPLOAD_MAX_ENTRIES = 100_000;

/** A save or load refusal as the API answers it: missing content 404, a bad archive or request 400. */
function httpError(e: unknown, spool?: string): unknown {
  if (!(e instanceof BundleError)) return e;
  // The spool file's path is the server's business: the client knows it as its upload.
  const message = spool === undefined ? e.message : e.message.replaceAll(spool, 'the upload');
  if (e.missing) return new ManifestUnknownError(message);
  return Object.assign(new Error(message), { statusCode: 400 });
}

export function archiveService(store: Store, config: Config, logger: Logger): ArchiveService {
  const log = logger.child({ component: 'archives' });
  // Names are routed as `airlock load` routes them; the plugin's authorize hook then judges each
  // stored name against the live registry (local, and the user's push right).
  const router = offlineRouter(config);
  return {
    async save(images, opts) {
      let platform;
      try {
        platform = opts.platform === undefined ? undefined : parsePlatform(opts.platform);
      } catch (e) {
        throw Object.assign(new Error((e as Error).message), { statusCode: 400 });
      }
      const selection = images.map((i) => {
        const r = parseImageReference(i.label, config.defaultUpstream);
        return { name: i.storeName, ref: i.ref, label: i.label, reference: formatImageReference(r.digest ? { ...r, tag: undefined } : r) };
      });
      try {
        // Loaded on first use: a serving process does not load tar code until an archive is asked for.
        const { ArchiveSaver } = await import('../jobs/archive-save.js');
        const { body } = await new ArchiveSaver(store, log).stream({ format: opts.format, ...(platform ? { platform } : {}), images: selection });
        return body;
      } catch (e) {
        throw httpError(e);
      }
    },
    async load(file, opts) {
      const { ArchiveLoader } = await import('../jobs/archive-load.js');
      const loader = new ArchiveLoader(
        store,
        {
          maxManifestSize: config.http.maxManifestSize,
          ...loadNaming(config, router, false),
          authorize: opts.authorize,
          // An upload comes from a client: it reuses only blobs its repository has, and is bounded
          // as pushes are, so a small gzip cannot fill the disk.
          storeBlobs: 'linked',
          limits: { maxEntrySize: pushOptions(config).maxBlobSize, maxTotal: config.storage.maxSize, maxRatio: UPLOAD_MAX_RATIO, maxEntries: UPLOAD_MAX_ENTRIES },
        },
        log,
      );
      try {
        const r = await loader.run([file], opts.name);
        return { images: r.images, forced: r.policyDenials };
      } catch (e) {
        throw httpError(e, file);
      }
    },
    spoolDir: async () => new FilesystemDriver(config.storage.root).tmpDir,
    ...(config.storage.maxSize !== undefined ? { maxUpload: config.storage.maxSize } : {}),
  };
}
