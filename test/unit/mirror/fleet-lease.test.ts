/** A fill's lease in the fleet: released when the fill settles, whatever renewal was under way. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createLogger } from '../../../src/logging/logger.js';
import { Fleet } from '../../../src/mirror/fleet.js';
import { digestBytes } from '../../../src/oci/digest.js';
import { leaseName } from '../../../src/storage/fleet-lease.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';
import { Store } from '../../../src/storage/store.js';
import { TEST_STORE_OPTIONS } from '../../helpers/store-files.js';
import type { PeerClient } from '../../../src/upstream/peer-client.js';

let root: string;
let store: Store;
const log = createLogger({ level: 'silent' });

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'airlock-lease-'));
  store = new Store(new FilesystemDriver(root), TEST_STORE_OPTIONS);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

it('a lease renewal still writing when the fill settles does not leave the lease behind', async () => {
  const bytes = Buffer.from('blob bytes');
  const d = digestBytes(bytes);
  // Renewals every 200 ms (a third of the TTL, at least 200 ms).
  const fleet = new Fleet(store, {} as PeerClient, { advertise: 'http://127.0.0.1:1', leaseTTL: 600 }, log);
  // Lease writes (renewals) reach the store 500 ms late, as a slow object store's PUT would.
  const write = store.fleet.write.bind(store.fleet);
  let renewals = 0;
  store.fleet.write = async (name, body) => {
    renewals++;
    await sleep(500);
    return write(name, body);
  };
  const source = fleet.source(d, { open: async () => ({ total: bytes.length, start: 0, body: Readable.from([bytes]) }) });
  await source.open(0, { claim: () => undefined });
  expect(await store.fleet.read(leaseName(d))).toBeDefined();

  // The first renewal starts at 200 ms and is still writing at 300 ms, when the fill settles.
  await sleep(300);
  expect(renewals).toBe(1);
  await source.settled?.();
  await sleep(700);
  expect(await store.fleet.read(leaseName(d))).toBeUndefined();
  expect(renewals).toBe(1);
});
