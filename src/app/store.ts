/**
 * Opening the store: what every command needs and nothing more (no HTTP, no upstream client),
 * so the offline commands start fast.
 */
import { access, constants, mkdir } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import type { StorageDriver } from '../storage/driver.js';
import { FilesystemDriver } from '../storage/filesystem-driver.js';
import { RegistryStore } from '../storage/registry-store.js';

/** A store root we cannot write to: refused at start-up with one clear line. */
export class StoreNotWritableError extends Error {
  constructor(root: string, cause: unknown) {
    super(`storage.root ${root} is not writable: ${(cause as Error).message}`, { cause });
    this.name = 'StoreNotWritableError';
  }
}

/** A bucket that does not answer or refuses writes: refused at start-up with one clear line. */
export class BucketUnavailableError extends Error {
  constructor(bucket: string, endpoint: string | undefined, cause: unknown) {
    const e = cause as Error & { $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    const what = e.name === 'NotFound' || status === 404 ? 'does not exist' : e.message || e.name || String(cause);
    super(`storage.s3: bucket ${bucket}${endpoint ? ` at ${endpoint}` : ''} is not usable: ${what}${status ? ` (HTTP ${status})` : ''}`, { cause });
    this.name = 'BucketUnavailableError';
  }
}

/**
 * The S3 driver is loaded only when the configuration names it: the AWS SDK costs a
 * filesystem-backed process ≈ 30 MiB of RSS and 0.4 s of start-up.
 */
export async function createDriver(config: Config): Promise<StorageDriver> {
  const s3 = config.storage.s3;
  if (config.storage.driver === 's3' && s3) {
    const { S3Driver } = await import('../storage/s3-driver.js');
    // With an object store, storage.root holds only this machine's spool files.
    return new S3Driver(s3, config.storage.root);
  }
  return new FilesystemDriver(config.storage.root);
}

export async function createStore(config: Config, driver?: StorageDriver): Promise<RegistryStore> {
  return new RegistryStore(driver ?? (await createDriver(config)), { maxManifestSize: config.http.maxManifestSize, manifestCacheBytes: config.cache.manifestMemory });
}

/**
 * Creates the root if needed, checks it is writable and removes temp files a killed process
 * left; with an object store (the driver the store will use), also checks that the bucket
 * answers and takes writes.
 */
export async function prepareStore(config: Config, driver: StorageDriver): Promise<void> {
  const local = new FilesystemDriver(config.storage.root);
  try {
    await mkdir(local.root, { recursive: true });
    await access(local.root, constants.W_OK);
    // Nothing in tmp/ is ever named by a link: what a dead process left there is garbage.
    await local.cleanTemp();
    await mkdir(local.tmpDir, { recursive: true });
  } catch (e) {
    throw new StoreNotWritableError(local.root, e);
  }
  if (config.storage.driver === 's3' && driver instanceof (await import('../storage/s3-driver.js')).S3Driver) {
    try {
      await driver.check();
    } catch (e) {
      // The store is unusable: release its connections (a kept-alive socket would hold the process).
      driver.close();
      throw new BucketUnavailableError(driver.config.bucket, driver.config.endpoint, e);
    }
  }
}
