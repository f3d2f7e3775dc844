/**
 * Opening the store: what every command needs and nothing more (no HTTP, no upstream client),
 * so the offline commands start fast.
 */
import { access, constants, mkdir } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import type { StorageDriver } from '../storage/driver.js';
import { storageDriver, type StoreDescription } from '../storage/drivers.js';
import { FilesystemDriver } from '../storage/filesystem-driver.js';
import { ReadOnlyDriver, type ReadOnlyReason } from '../storage/read-only-driver.js';
import { Store } from '../storage/store.js';

/** A store root we cannot write to: refused at start-up with one clear line. */
export class StoreNotWritableError extends Error {
  constructor(root: string, cause: unknown) {
    super(`storage.root ${root} is not writable: ${(cause as Error).message} (to serve it as it is, set storage.readOnly: true)`, { cause });
    this.name = 'StoreNotWritableError';
  }
}

/** A read-only store root that cannot be read either: nothing to serve. */
export class StoreNotReadableError extends Error {
  constructor(root: string, cause: unknown) {
    super(`storage.root ${root} cannot be read: ${(cause as Error).message}`, { cause });
    this.name = 'StoreNotReadableError';
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
 * A read-only store (storage.readOnly, or a root on a read-only filesystem: a DVD, a `:ro`
 * volume) is only checked to exist and be readable, and nothing is created in it:
 * resolves with why it is read-only (the caller serves it so), else undefined.
 */
export async function prepareStore(config: Config, driver: StorageDriver): Promise<ReadOnlyReason | undefined> {
  const local = new FilesystemDriver(config.storage.root);
  const label = describeStore(config).label;
  if (config.storage.readOnly) {
    // An object store's spool (storage.root) is not needed to read it; nor is its write probe run.
    if (driver instanceof FilesystemDriver) {
      try {
        await access(local.root, constants.R_OK | constants.X_OK);
      } catch (e) {
        throw new StoreNotReadableError(local.root, e);
      }
    }
    return { label, why: 'storage.readOnly: true' };
  }
  try {
    await mkdir(local.root, { recursive: true });
  } catch (e) {
    throw new StoreNotWritableError(local.root, e);
  }
  const found = await notWritable(local.root);
  if (found) return { label, why: found };
  try {
    // Nothing in tmp/ is ever named by a link: what a dead process left there is garbage.
    await local.cleanTemp();
    await mkdir(local.tmpDir, { recursive: true });
  } catch (e) {
    throw new StoreNotWritableError(local.root, e);
  }
  await storageDriver(config.storage.driver).check?.(driver, config.storage);
  return undefined;
}

/** Why an existing, readable root cannot be written (`storage.root is on a read-only filesystem (EROFS)`), or undefined. */
async function notWritable(root: string): Promise<string | undefined> {
  try {
    await access(root, constants.W_OK);
    return undefined;
  } catch (e) {
    // Only read-only media turn read-only mode on by themselves: a root this user may not write
    // is more likely a mistake, and a mirror that silently stops filling hides it.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EROFS') throw new StoreNotWritableError(root, e);
    try {
      await access(root, constants.R_OK | constants.X_OK);
    } catch (e2) {
      throw new StoreNotReadableError(root, e2);
    }
    return 'storage.root is on a read-only filesystem (EROFS)';
  }
}

/** The store, opened as every command needs it; `readOnly` says why it is served read-only. */
export interface OpenedStore {
  store: Store;
  readOnly?: ReadOnlyReason;
}

/**
 * Builds the driver, prepares the store (prepareStore) and, when it is read-only, wraps the
 * driver so that no write can reach the medium whatever path tries one.
 */
export async function openStore(config: Config): Promise<OpenedStore> {
  const driver = await createDriver(config);
  const readOnly = await prepareStore(config, driver);
  if (!readOnly) return { store: await createStore(config, driver) };
  return { store: await createStore(config, new ReadOnlyDriver(driver, readOnly)), readOnly };
}
