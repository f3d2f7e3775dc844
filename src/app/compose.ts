/**
 * The one place that constructs concrete classes and wires them together.
 */
import { access, constants, mkdir, rm } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { buildApp } from '../http/app.js';
import type { Logger } from '../logging/logger.js';
import { LocalRegistry } from '../mirror/local-registry.js';
import { FilesystemDriver } from '../storage/filesystem-driver.js';
import { RegistryStore } from '../storage/registry-store.js';

export interface Airlock {
  app: FastifyInstance;
  store: RegistryStore;
  config: Config;
  close(): Promise<void>;
}

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
    // Nothing in tmp/ is ever named by a link: whatever is there was being written when a
    // previous process died, and is garbage.
    await rm(driver.tmpDir, { recursive: true, force: true });
    await mkdir(driver.tmpDir, { recursive: true });
  } catch (e) {
    throw new StoreNotWritableError(driver.root, e);
  }
}

export async function createAirlock(config: Config, logger: Logger): Promise<Airlock> {
  await prepareStore(config);
  const store = createStore(config);
  const registry = new LocalRegistry(store, { defaultPageSize: config.http.maxPageEntries });
  const app = buildApp({ registry, logger, maxPageEntries: config.http.maxPageEntries, bodyLimit: config.http.maxManifestSize });
  return {
    app,
    store,
    config,
    close: async () => {
      await app.close();
    },
  };
}
