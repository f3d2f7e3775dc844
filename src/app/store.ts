/**
 * Opening the store: what every command needs and nothing more (no HTTP, no upstream client),
 * so the offline commands start fast.
 */
import { access, constants, mkdir } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import type { StorageDriver } from '../storage/driver.js';
import { storageDriver, type StoreDescription } from '../storage/drivers.js';
import { FilesystemDriver } from '../storage/filesystem-driver.js';
import { Store } from '../storage/store.js';

/** A store root we cannot write to: refused at start-up with one clear line. */
export class StoreNotWritableError extends Error {
  constructor(root: string, cause: unknown) {
    super(`storage.root ${root} is not writable: ${(cause as Error).message}`, { cause });
    this.name = 'StoreNotWritableError';
  }
}

/** The configured driver, from the registry (storage/drivers.ts), which loads only what it names. */
export async function createDriver(config: Config): Promise<StorageDriver> {
  return storageDriver(config.storage.driver).create(config.storage);
}

/** How messages and the start-up log name the configured store (a directory, a bucket). */
export function describeStore(config: Config): StoreDescription {
  return storageDriver(config.storage.driver).describe(config.storage);
}

export async function createStore(config: Config, driver?: StorageDriver): Promise<Store> {
  return new Store(driver ?? (await createDriver(config)), { maxManifestSize: config.http.maxManifestSize, manifestCacheBytes: config.cache.manifestMemory });
}

/**
 * Creates the root if needed, checks it is writable and removes temp files a killed process
 * left; then runs the driver's own check (an object store: the bucket answers and takes writes).
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
  await storageDriver(config.storage.driver).check?.(driver, config.storage);
}
