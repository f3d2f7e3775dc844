/**
 * Storage drivers by name, as Distribution's registry/storage/driver/factory: the configuration
 * names one (storage.driver) and everything else asks this registry, never the name. What a
 * driver can do (redirect, shared) is declared in config/storage-drivers.ts, which validation
 * reads; here each name gets how to build, describe and check its driver. A new backend is its
 * driver file and one entry below (TypeScript refuses a configured name without one).
 */
import type { StorageConfig } from '../config/schema.js';
import { storageDriverCapabilities, type StorageDriverCapabilities, type StorageDriverName } from '../config/storage-drivers.js';
import { BucketUnavailableError } from './bucket-unavailable-error.js';
import type { StorageDriver } from './driver.js';
import { FilesystemDriver } from './filesystem-driver.js';

/** How messages and the start-up log name a store. */
export interface StoreDescription {
  /** Where the store is: its root directory, s3://bucket/prefix. */
  label: string;
  /** The fields of the `airlock serving` log line. */
  fields: Record<string, unknown>;
}

interface DriverFactory {
  /** The driver for this configuration. Imports its heavy modules here, only when configured. */
  create(storage: StorageConfig): Promise<StorageDriver>;
  describe(storage: StorageConfig): StoreDescription;
  /** Start-up check that the medium answers and takes writes; throws one line. */
  check?(driver: StorageDriver, storage: StorageConfig): Promise<void>;
}

export interface StorageDriverEntry extends DriverFactory {
  readonly name: StorageDriverName;
  readonly capabilities: StorageDriverCapabilities;
}

const FACTORIES = {
  filesystem: {
    create: async (storage) => new FilesystemDriver(storage.root),
    describe: (storage) => ({ label: storage.root, fields: { root: storage.root } }),
  },
  s3: {
    // Imported only here: the AWS SDK would cost every filesystem-backed process memory and
    // start-up. See bench/PERFORMANCE.md#s3-driver-loaded-only-when-configured.
    async create(storage) {
      if (!storage.s3) throw new Error('storage.s3 is not configured');
      const { S3Driver } = await import('./s3-driver.js');
      // With an object store, storage.root holds only this machine's spool files.
      return new S3Driver(storage.s3, storage.root);
    },
    describe: (storage) => ({
      label: `s3://${storage.s3?.bucket ?? ''}${storage.s3?.prefix ? `/${storage.s3.prefix}` : ''}`,
      fields: { bucket: storage.s3?.bucket, endpoint: storage.s3?.endpoint, spool: storage.root },
    }),
    async check(driver) {
      const { S3Driver } = await import('./s3-driver.js');
      if (!(driver instanceof S3Driver)) return;
      try {
        await driver.check();
      } catch (e) {
        // The store is unusable: release its connections (a kept-alive socket would hold the process).
        driver.close();
        throw new BucketUnavailableError(driver.config.bucket, driver.config.endpoint, e);
      }
    },
  },
} satisfies Record<StorageDriverName, DriverFactory>;

/** The registered driver of that name. */
export function storageDriver(name: StorageDriverName): StorageDriverEntry {
  const factory: DriverFactory = FACTORIES[name];
  return { ...factory, name, capabilities: storageDriverCapabilities(name) };
}
