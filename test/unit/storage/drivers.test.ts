/** The driver registry: every name a configuration may give builds, describes and checks its store. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { STORAGE_DRIVER_NAMES } from '../../../src/config/storage-drivers.js';
import { storageDriver } from '../../../src/storage/drivers.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';

const base = { baseDir: '/etc/airlock', env: {} };

describe('storage driver registry', () => {
  it('has an entry for every driver name the schema accepts, with its capabilities', () => {
    expect(STORAGE_DRIVER_NAMES).toEqual(['filesystem', 's3']);
    for (const name of STORAGE_DRIVER_NAMES) expect(storageDriver(name)).toMatchObject({ name, capabilities: expect.any(Object) });
    expect(storageDriver('filesystem').capabilities).toMatchObject({ redirect: false, shared: false });
    expect(storageDriver('s3').capabilities).toMatchObject({ redirect: true, shared: true });
  });

  it('names a filesystem store by its root and a bucket as s3://bucket/prefix, in messages and the start-up log', () => {
    const fs = parseConfig('storage:\n  root: /var/lib/airlock\n', base).storage;
    expect(storageDriver('filesystem').describe(fs)).toEqual({ label: '/var/lib/airlock', fields: { root: '/var/lib/airlock' } });
    const s3 = parseConfig('storage:\n  root: /spool\n  driver: s3\n  s3:\n    endpoint: http://127.0.0.1:7480\n    bucket: mirror\n    prefix: site-a\n', base).storage;
    expect(storageDriver('s3').describe(s3)).toEqual({ label: 's3://mirror/site-a', fields: { bucket: 'mirror', endpoint: 'http://127.0.0.1:7480', spool: '/spool' } });
    const bare = parseConfig('storage:\n  driver: s3\n  s3:\n    bucket: mirror\n', base).storage;
    expect(storageDriver('s3').describe(bare).label).toBe('s3://mirror');
  });

  it('builds a filesystem driver on storage.root', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-drivers-'));
    try {
      const driver = await storageDriver('filesystem').create(parseConfig(`storage:\n  root: ${dir}\n`, base).storage);
      expect(driver).toBeInstanceOf(FilesystemDriver);
      expect((driver as FilesystemDriver).root).toBe(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
