/**
 * The web console's JSON API (registered under `<ui.path>/api`): reads of the store, the traffic
 * and the jobs, and the operator's actions, each judged here through the auth decorations and
 * carried out by a ConsoleService (app/console/). A repository the user may not pull does not
 * exist for them: absent from lists, 404 on its pages (never 403, so names do not leak).
 */
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { DeniedError, ManifestUnknownError, NameInvalidError, NameUnknownError, TooManyRequestsError, UnsupportedError } from '../../oci/errors.js';
import { isValidRepositoryName } from '../../oci/reference.js';
import type { ConsoleService, Fill, MayPull, RepoSort } from '../console-service.js';

export type { ConsoleService } from '../console-service.js';

export interface UiApiOptions {
  service: ConsoleService;
  /** Set when the store is read-only: writes are refused with it (405 UNSUPPORTED). */
  readOnly?: string;
  /** Most event streams open at once (default 100); more are refused with 429. */
  maxEventClients?: number;
}

const SORTS = new Set<RepoSort>(['name', 'size', 'images', 'lastPulled', 'pulls']);
const MAX_LIMIT = 500;
const FILLS_EVERY_MS = 500;
const KEEPALIVE_MS = 15_000;

/** A malformed request: 400 (error-handler.ts). */
function bad(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

function conflict(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 409 });
}

/** One string parameter of the query (the first when repeated); undefined when absent. */
function param(request: FastifyRequest, key: string, maxLength = 1024): string | undefined {
  const v = (request.query as Record<string, unknown> | undefined)?.[key];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  if (typeof s !== 'string') throw bad(`${key} must be a string`);
  if (s.length > maxLength) throw bad(`${key} is too long`);
  return s;
}

function required(request: FastifyRequest, key: string): string {
  const s = param(request, key);
  if (s === undefined || s === '') throw bad(`${key} is required`);
  return s;
}

/**
 * A stored repository name, checked against the distribution grammar before it reaches the
 * store: a name is a path there (`../` must never get that far).
 */
function repositoryName(name: string): string {
  if (!isValidRepositoryName(name)) throw new NameInvalidError(`invalid repository name ${JSON.stringify(name.slice(0, 300))}`);
  return name;
}

function count(request: FastifyRequest, key: string, fallback: number, max: number): number {
  const s = param(request, key, 16);
  if (s === undefined || s === '') return fallback;
  if (!/^\d+$/.test(s)) throw bad(`${key} must be a non-negative integer`);
  return Math.min(Number(s), max);
}

/** The JSON body's fields. Bodies arrive as bytes (body-parsing.ts); JSON must say so (the lead's CSRF rule). */
function body(request: FastifyRequest, optional = false): Record<string, unknown> {
  const raw = request.body;
  const empty = raw === undefined || raw === null || (Buffer.isBuffer(raw) && raw.byteLength === 0);
  if (empty && optional) return {};
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw Object.assign(new Error('send the body as Content-Type: application/json'), { statusCode: 415 });
  let v: unknown = raw;
  if (Buffer.isBuffer(raw)) {
    try {
      v = JSON.parse(raw.toString('utf8'));
    } catch {
      throw bad('the body is not valid JSON');
    }
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad('send a JSON object as the body');
  return v as Record<string, unknown>;
}

function text(b: Record<string, unknown>, key: string): string {
  const v = b[key];
  if (typeof v !== 'string' || v === '' || v.length > 1024) throw bad(`${key} must be a non-empty string`);
  return v;
}

export const uiApi: FastifyPluginCallback<UiApiOptions> = function uiApi(app, { service, readOnly, maxEventClients = 100 }, next) {
  const read = async (request: FastifyRequest): Promise<MayPull> => {
    request.endpoint = 'ui';
    await app.auth.identify(request, 'log in to see the console', true);
    return (name) => app.auth.mayPull(request, name);
  };
  /** A repository the user may not pull is answered as missing. */
  const visible = (may: MayPull, name: string): void => {
    if (!may(name)) throw new NameUnknownError(undefined, { detail: { name } });
  };
  const write = async (request: FastifyRequest): Promise<void> => {
    request.endpoint = 'ui';
    await app.auth.identify(request, 'log in to change the store', false);
  };
  const administer = async (request: FastifyRequest): Promise<void> => {
    await write(request);
    if (!app.auth.mayAdminister(request)) throw new DeniedError(`${request.user ?? 'anonymous'} may not run maintenance jobs`);
  };
  const deletion = (request: FastifyRequest, may: MayPull, name: string): void => {
    visible(may, name);
    if (readOnly) throw new UnsupportedError(readOnly);
    if (!service.deleteEnabled()) throw new UnsupportedError('deleting is disabled on this registry; set storage.delete.enabled: true in mirror.yml to allow it');
    if (!app.auth.mayDelete(request, name)) throw new DeniedError(`${request.user ?? 'anonymous'} may not delete in ${name}`);
  };
  const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store');

  app.get('/overview', async (request, reply) => {
    const may = await read(request);
    noStore(reply);
    const o = await service.overview(may);
    // Upstream addresses name internal hosts: shown to logged-in users (or without logins), as /readyz does.
    if (request.user === undefined && !app.auth.mayAdminister(request)) o.upstreams = o.upstreams.map((u) => ({ ...u, url: '' }));
    return o;
  });

  /** Open event streams: hijacked, so the server's close would wait for them; ended before it. */
  const streams = new Set<() => void>();
  app.addHook('preClose', (done) => {
    for (const end of [...streams]) end();
    done();
  });
  app.get('/events', async (request, reply) => {
    const may = await read(request);
    if (streams.size >= maxEventClients) throw new TooManyRequestsError(`at most ${maxEventClients} event streams at once`);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...(reply.getHeaders() as Record<string, string>), 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write(': airlock fills\n\n');
    let last = '';
    const send = (fills: Fill[]) => res.write(`event: fills\ndata: ${JSON.stringify(fills)}\n\n`);
    const tick = setInterval(() => {
      const fills = service.fills(may);
      const now = JSON.stringify(fills);
      // While fills run, every tick (received bytes move); once when they drop to none.
      if (fills.length > 0 || (last !== '' && last !== '[]')) send(fills);
      last = now;
    }, FILLS_EVERY_MS);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    const first = service.fills(may);
    if (first.length > 0) send(first);
    last = JSON.stringify(first);
    const close = () => {
      clearInterval(tick);
      clearInterval(keepalive);
      streams.delete(end);
    };
    const end = () => {
      close();
      res.end();
    };
    streams.add(end);
    // The response's close: the stream ended or the client went away (the request's own 'close'
    // fires as soon as its empty body was read).
    res.once('close', close);
  });

  app.get('/repositories', async (request, reply) => {
    const may = await read(request);
    const sort = (param(request, 'sort', 16) || 'name') as RepoSort;
    if (!SORTS.has(sort)) throw bad(`sort is one of ${[...SORTS].join(', ')}`);
    const order = param(request, 'order', 8) || (sort === 'name' ? 'asc' : 'desc');
    if (order !== 'asc' && order !== 'desc') throw bad('order is asc or desc');
    const q = param(request, 'q', 256);
    const limit = Math.max(1, count(request, 'limit', 50, MAX_LIMIT));
    noStore(reply);
    return service.repositories({ ...(q ? { q } : {}), sort, order, offset: count(request, 'offset', 0, Number.MAX_SAFE_INTEGER), limit }, may);
  });

  app.get('/repository', async (request, reply) => {
    const may = await read(request);
    const name = repositoryName(required(request, 'name'));
    visible(may, name);
    const r = await service.repository(name);
    if (!r) throw new NameUnknownError(undefined, { detail: { name } });
    noStore(reply);
    return r;
  });

  app.get('/image', async (request, reply) => {
    const may = await read(request);
    const name = repositoryName(required(request, 'name'));
    const ref = required(request, 'ref');
    if (!may(name)) throw new ManifestUnknownError(undefined, { detail: { name, reference: ref } });
    const r = await service.image(name, ref);
    if (!r) throw new ManifestUnknownError(undefined, { detail: { name, reference: ref } });
    noStore(reply);
    return r;
  });

  app.delete('/image', async (request, reply) => {
    await write(request);
    const name = repositoryName(required(request, 'name'));
    const ref = required(request, 'ref');
    deletion(request, (n) => app.auth.mayPull(request, n), name);
    await service.deleteImage(name, ref, { ...(request.user !== undefined ? { user: request.user } : {}), address: request.ip });
    reply.code(202);
    return { deleted: ref };
  });

  const pinning = async (request: FastifyRequest, name: string, digest: string, on: boolean, reply: FastifyReply) => {
    const may: MayPull = (n) => app.auth.mayPull(request, n);
    visible(may, name);
    if (readOnly) throw new UnsupportedError(readOnly);
    if (!app.auth.mayDelete(request, name)) throw new DeniedError(`${request.user ?? 'anonymous'} may not pin in ${name}`);
    await (on ? service.pin(name, digest) : service.unpin(name, digest));
    reply.code(204).send();
  };
  app.post('/pin', async (request, reply) => {
    await write(request);
    const b = body(request);
    await pinning(request, repositoryName(text(b, 'name')), text(b, 'digest'), true, reply);
  });
  app.delete('/pin', async (request, reply) => {
    await write(request);
    await pinning(request, repositoryName(required(request, 'name')), required(request, 'digest'), false, reply);
  });

  app.get('/prefetch', async (request, reply) => {
    const may = await read(request);
    noStore(reply);
    const status = service.prefetchStatus();
    // The list names repositories too: only those the user may pull (an unroutable entry: administrators).
    const shown = await Promise.all(status.entries.map(async (e) => {
      const name = await service.storeNameOf(e.image).catch(() => undefined);
      return name === undefined ? app.auth.mayAdminister(request) : may(name);
    }));
    return { ...status, entries: status.entries.filter((_, i) => shown[i]) };
  });

  app.post('/prefetch', async (request) => {
    await write(request);
    if (readOnly) throw new UnsupportedError(readOnly);
    const image = text(body(request), 'image');
    const storeName = await service.storeNameOf(image);
    // A pull of it would fetch it anyway: the same right. Pinning it takes the right to pin.
    if (!app.auth.mayPull(request, storeName)) throw new DeniedError(`${request.user ?? 'anonymous'} may not pull ${storeName}`);
    return service.prefetchOne(image, { pin: app.auth.mayDelete(request, storeName) });
  });

  app.post('/prefetch/run', async (request, reply) => {
    await administer(request);
    if (readOnly) throw new UnsupportedError(readOnly);
    if (!service.prefetchAll()) throw conflict('a prefetch run is already going');
    reply.code(202);
    return { started: true };
  });

  app.get('/maintenance', async (request, reply) => {
    const may = await read(request);
    noStore(reply);
    return service.maintenance(may, app.auth.mayAdminister(request));
  });

  app.post('/gc', async (request) => {
    await administer(request);
    if (readOnly) throw new UnsupportedError(readOnly);
    const b = body(request, true);
    if (b.dryRun !== undefined && typeof b.dryRun !== 'boolean') throw bad('dryRun must be true or false');
    if (b.deleteUntagged !== undefined && typeof b.deleteUntagged !== 'boolean') throw bad('deleteUntagged must be true or false');
    const report = await service.gc({ dryRun: b.dryRun !== false, deleteUntagged: b.deleteUntagged === true });
    return { report };
  });

  app.post('/verify', async (request, reply) => {
    await administer(request);
    if (!service.verify()) throw conflict('a verify is already running');
    reply.code(202);
    return { started: true };
  });
  next();
};
