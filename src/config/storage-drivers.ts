/**
 * The storage drivers a configuration may name, and what each can do. Validation needs these
 * facts, and config/ sits below storage/ (eslint.config.js), so they live here; storage/drivers.ts
 * pairs each name with its factory (and does not compile while one lacks a factory). A new
 * backend: its driver file and factory entry in storage/, one line here, and its settings
 * section (storage.<name>) in schema.ts.
 */
import type { Config } from './schema.js';

export interface StorageDriverCapabilities {
  /** Has URLs clients can fetch blobs from without airlock's credentials (storage.redirect). */
  readonly redirect: boolean;
  /** One store several replicas can share (fleet). */
  readonly shared: boolean;
  /** Needs its settings under storage.<name>; what they are, for the error when they are missing. */
  readonly settings?: string;
}

export const STORAGE_DRIVERS = {
  filesystem: { redirect: false, shared: false },
  s3: { redirect: true, shared: true, settings: 'bucket, endpoint, credentials' },
} as const satisfies Record<string, StorageDriverCapabilities>;

export type StorageDriverName = keyof typeof STORAGE_DRIVERS;

/** The names, for the schema's enum (the first is the default). */
export const STORAGE_DRIVER_NAMES = Object.keys(STORAGE_DRIVERS) as [StorageDriverName, ...StorageDriverName[]];

export function storageDriverCapabilities(name: StorageDriverName): StorageDriverCapabilities {
  return STORAGE_DRIVERS[name];
}

function driversThat(capability: 'redirect' | 'shared'): string {
  return STORAGE_DRIVER_NAMES.filter((n) => storageDriverCapabilities(n)[capability]).join(' or ');
}

/** The cross-key checks of storage.driver: its settings, and what redirect and fleet need of it. */
export function checkStorageDriver(c: Pick<Config, 'storage' | 'fleet'>): string | undefined {
  const driver = c.storage.driver;
  const capabilities = storageDriverCapabilities(driver);
  const sections = c.storage as Readonly<Record<string, unknown>>;
  if (capabilities.settings && sections[driver] === undefined) return `storage.${driver}: required with storage.driver: ${driver} (${capabilities.settings})`;
  for (const other of STORAGE_DRIVER_NAMES) {
    if (other !== driver && storageDriverCapabilities(other).settings && sections[other] !== undefined) return `storage.${other}: only used with storage.driver: ${other}`;
  }
  if (c.storage.redirect && !capabilities.redirect) return `storage.redirect: needs storage.driver: ${driversThat('redirect')} (a ${driver} has no URL to redirect to)`;
  if (c.fleet && !capabilities.shared) return `fleet: replicas share a bucket; set storage.driver: ${driversThat('shared')}`;
  return undefined;
}
