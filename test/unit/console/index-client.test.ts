/**
 * The console's index in its worker thread, on a real store of 100 repositories written in the
 * standard layout (the bench's generator): nothing runs until the console is first used, the
 * first answer waits for the whole walk, pull figures come from the serving thread's access
 * records, names are routed by the serving thread, and stopping waits for what is in flight.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleStore, repoName, type ConsoleStore } from '../../../bench/lib/console-store.js';
import { IndexClient, type Described } from '../../../src/app/console/index-client.js';
import { parseConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/logging/logger.js';
import { AccessTimes } from '../../../src/storage/access-times.js';
import type { StorageDriver } from '../../../src/storage/driver.js';

let store: ConsoleStore;
let client: IndexClient;
const times = new AccessTimes({} as StorageDriver, { persist: false });
const described: string[] = [];
const all = () => true;
const query = { sort: 'name' as const, order: 'asc' as const, offset: 0, limit: 500 };

beforeAll(async () => {
  // Not the bench smoke test's store (100, 1000): a reuse clears the store's .airlock/ under its servers.
  store = await consoleStore(100, 1001);
  const config = parseConfig(`storage:\n  root: ${store.root}\n`, { baseDir: process.cwd(), env: {} });
  client = new IndexClient({
    config,
    accessTimes: times,
    describe: async (name): Promise<Described> => {
      described.push(name);
      return name.startsWith('org1/') ? { kind: 'mirror', upstream: 'docker.io' } : { kind: 'local', upstream: null };
    },
    logger: createLogger({ level: 'silent' }),
    rescanMs: 300_000,
  });
}, 120_000);

afterAll(async () => {
  await client?.stop();
});

describe('IndexClient', () => {
  it('starts nothing until asked; the first list waits for the whole walk', async () => {
    client.changed('org0/service-00000');
    await client.scan();
    expect(client.running).toBe(false);
    expect(described).toEqual([]);
    const page = await client.list(query, all);
    expect(client.running).toBe(true);
    expect(page.total).toBe(100);
    expect(page.items.map((r) => r.name)).toEqual(Array.from({ length: 100 }, (_, r) => repoName(r)).sort());
    expect(page.items[0]).toMatchObject({ images: 2, tags: 3, pulls: 0, lastPulled: null, pinned: false });
    expect(page.items[0]!.size).toBeGreaterThan(0);
    // Every name was routed by this thread, once.
    expect(described.sort()).toEqual(page.items.map((r) => r.name).sort());
    expect(page.items.find((r) => r.name === 'org1/service-00001')).toMatchObject({ kind: 'mirror', upstream: 'docker.io' });
    expect(await client.totals()).toEqual({ images: 200, repositories: 100 });
  });

  it("adds this thread's pull figures, sorts by them, and filters by the caller's rights", async () => {
    const { name, digest } = store.sample;
    times.touch(name, digest, 5000, true);
    times.touch(name, digest, 6000, true);
    const top = await client.list({ ...query, sort: 'pulls', order: 'desc', limit: 1 }, all);
    expect(top.items[0]).toMatchObject({ name, pulls: 2, lastPulled: 6000 });
    const mine = await client.list({ ...query, q: 'SERVICE-0001' }, (n) => n.startsWith('org1'));
    expect(mine.items.map((r) => r.name)).toEqual(['org10/service-00010', 'org11/service-00011', 'org12/service-00012', 'org13/service-00013', 'org14/service-00014', 'org15/service-00015', 'org16/service-00016', 'org17/service-00017', 'org18/service-00018', 'org19/service-00019']);
    const detail = await client.detail(name);
    expect(detail?.tags.find((t) => t.digest === digest)).toMatchObject({ lastPulled: 6000 });
    expect((await client.imageFacts(name, digest)).size).toBeGreaterThan(0);
    expect(await client.detail('no/such')).toBeUndefined();
  });

  it('stop lets a request in flight finish, then refuses new ones without starting a worker', async () => {
    const pending = client.list(query, all);
    await client.stop();
    expect((await pending).total).toBe(100);
    expect(client.running).toBe(false);
    await expect(client.list(query, all)).rejects.toThrow('the console is shutting down');
    expect(client.running).toBe(false);
  });
});
