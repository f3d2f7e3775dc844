import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StorageDriver } from '../../../src/storage/driver.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';
import { driverSuite } from '../../helpers/driver-suite.js';

/** Temp files left in the driver's per-process temp directory (none once a write commits or aborts). */
async function tempFiles(driver: StorageDriver): Promise<string[]> {
  return readdir((driver as FilesystemDriver).tmpDir).catch(() => []);
}

driverSuite('filesystem', {
  create: async () => new FilesystemDriver(await mkdtemp(path.join(os.tmpdir(), 'airlock-fsdriver-'))),
  destroy: (driver) => rm((driver as FilesystemDriver).root, { recursive: true, force: true }),
  leftovers: tempFiles,
});

let root: string;
let driver: FilesystemDriver;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'airlock-store-'));
  driver = new FilesystemDriver(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('FilesystemDriver', () => {
  it('refuses paths that leave the root', async () => {
    for (const p of ['../x', 'a/../../x', '/etc/passwd', 'a/./b', 'a\0b']) {
      expect(() => driver.resolve(p)).toThrow();
    }
  });

  it('an aborted staged write leaves nothing behind and never appears under its path', async () => {
    const w = await driver.stage();
    await w.write(Buffer.alloc(3 << 20, 1));
    await w.abort();
    expect(await readdir(driver.tmpDir)).toEqual([]);
    expect(await driver.stat('x/data')).toBeUndefined();
  });

  it('a committed staged write appears whole, coalescing small writes', async () => {
    const w = await driver.stage();
    for (let i = 0; i < 1000; i++) await w.write(Buffer.alloc(3000, i & 0xff));
    expect(await driver.stat('x/y/data')).toBeUndefined();
    await w.commit('x/y/data');
    expect((await stat(path.join(root, 'x/y/data'))).size).toBe(3_000_000);
    expect(await readdir(driver.tmpDir)).toEqual([]);
  });
});
