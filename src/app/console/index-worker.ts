/**
 * Runs in a worker thread (index-client.ts): the console's repository index, with a store of
 * its own on the same configuration, walking it at start and every `rescanMs`. Its tens of
 * megabytes of small objects live in this thread's heap, so the serving thread's garbage
 * collector never walks them (see bench/PERFORMANCE.md#the-index-in-a-worker-thread). What only
 * the serving thread knows (how a name routes) is asked of it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../../config/schema.js';
import { ReadOnlyDriver } from '../../storage/read-only-driver.js';
import { createDriver, createStore } from '../store.js';
import type { Described, FromWorker, ToWorker } from './index-client.js';
import { RepoIndex } from './repo-index.js';
import { storeSource } from './sources.js';

const port = parentPort!;
const FIRST_WAIT_MS = 10_000;
const { config, rescanMs } = workerData as { config: Config; rescanMs: number };
// The index only reads: a write from this thread would be a bug, refused as one.
const store = await createStore(config, new ReadOnlyDriver(await createDriver(config), { label: 'the console index', why: 'it only reads' }));

let nextId = 0;
const asked = new Map<number, (d: Described) => void>();
const send = (m: FromWorker) => port.postMessage(m);

// How a name routes (local or mirrored, and from where) is the serving thread's to say.
const describe = (repo: string) =>
  new Promise<Described>((resolve) => {
    const id = nextId++;
    asked.set(id, resolve);
    send({ t: 'describe', id, name: repo });
  });

const index = new RepoIndex(storeSource(store, config.http.maxManifestSize, describe));
const scan = () =>
  index.scan().catch((e: unknown) => send({ t: 'log', msg: 'console rescan failed', err: (e as Error).message }));

let walked = false;
const first = scan().finally(() => (walked = true));

port.on('message', (m: ToWorker) => {
  if (m.t === 'described') {
    asked.get(m.id)?.(m.value);
    asked.delete(m.id);
    return;
  }
  if (m.t === 'changed') {
    index.changed(m.name);
    return;
  }
  if (m.t === 'pinned') {
    index.setPinned(m.name, m.digest, m.on);
    return;
  }
  const run = async (): Promise<unknown> => {
    // The first answers wait for the first walk (seconds on a disk), but not for ever: a walk
    // of a big bucket may take minutes, and a partial list beats a proxy's timeout.
    if (!walked) await Promise.race([first, new Promise((r) => setTimeout(r, FIRST_WAIT_MS).unref())]);
    switch (m.op) {
      case 'scan':
        return index.scan();
      case 'reloadPins':
        return index.reloadPins();
      case 'totals':
        return index.totals();
      case 'rows':
        return index.rows(m.q);
      case 'detail':
        return index.detail(m.name);
      case 'imageFacts':
        return index.imageFacts(m.name, m.digest);
      case 'refresh':
        return index.refresh(m.name);
    }
  };
  run().then(
    (value) => send({ t: 'res', id: m.id, value }),
    (e: unknown) => send({ t: 'res', id: m.id, error: e instanceof Error ? e.message : String(e) }),
  );
});

setInterval(() => void scan(), rescanMs).unref();
