/**
 * undici's dispatchers and their request API, without the rest of the package. Its index also
 * loads fetch, WebSocket, EventSource, the HTTP caches and the mock agents, none of which airlock
 * uses, at a cost in heap and RSS in every process. See bench/PERFORMANCE.md#undici-without-its-index.
 *
 * The modules below are what the index itself wires together; the package has no `exports` map,
 * so these paths are importable. test/unit/runtime/undici.test.ts checks that they still are,
 * and that the index stays unloaded.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

const DispatcherBase = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
// The index does this too: request(), stream() and the others are mixed into every dispatcher.
Object.assign(DispatcherBase.prototype, require('undici/lib/api/index.js') as object);

export const Agent = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export type Agent = Undici.Agent;
export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export type Pool = Undici.Pool;
export type { Dispatcher } from 'undici';

/** `undici.request(url, { dispatcher })` without the index: a GET (or `method`) of an absolute URL. */
export function requestUrl(dispatcher: Undici.Dispatcher, url: string | URL, opts: Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method?: Undici.Dispatcher.HttpMethod } = {}): Promise<Undici.Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  return dispatcher.request({ ...opts, origin: u.origin, path: `${u.pathname}${u.search}`, method: opts.method ?? 'GET' });
}

export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;
