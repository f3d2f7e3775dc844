/**
 * Opening the store: what every command needs and nothing more (no HTTP, no upstream client),
 * so the offline commands start fast.
 */
import { access, constants, mkdir } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { FilesystemDriver } from '../storage/filesystem-driver.js';
import { RegistryStore } from '../storage/registry-store.js';

/** A store root we cannot write to: refused at start-up with one clear line. */
export class StoreNotWritableError extends Error {
  constructor(root: string, cause: unknown) {
    super(`storage.root ${root} is not writable: ${(cause as Error).message}`, { cause });
    this.name = 'StoreNotWritableError';
  }
}

export function createStore(config: Config): RegistryStore {
  const driver = new FilesystemDriver(config.storage.root);
  return new RegistryStore(driver, { maxManifestSize: config.http.maxManifestSize, manifestCacheBytes: config.cache.manifestMemory });
}

/** Creates the root if needed, checks it is writable and removes temp files a killed process left. */
export async function prepareStore(config: Config): Promise<void> {
  const driver = new FilesystemDriver(config.storage.root);
  try {
    await mkdir(driver.root, { recursive: true });
    await access(driver.root, constants.W_OK);
    // Nothing in tmp/ is ever named by a link: what a dead process left there is garbage.
    await driver.cleanTemp();
    await mkdir(driver.tmpDir, { recursive: true });
  } catch (e) {
    throw new StoreNotWritableError(driver.root, e);
  }
}

