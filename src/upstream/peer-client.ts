/**
 * Reads a blob fill from another airlock replica's fleet port (GET /fills/<digest>, Range from
 * an offset), so that replicas on one bucket fetch each blob from the upstream once.
 */
import type { Readable } from 'node:stream';
import { Agent, requestUrl } from '../runtime/undici.js';

export interface PeerFill {
  /** The blob's size. */
  total: number;
  /** Where the body starts. */
  start: number;
  body: Readable;
}

/** Another replica refused this one: their fleet.secret settings differ. */
export class PeerRefusedError extends Error {
  override name = 'PeerRefusedError';
}

export class PeerClient {
  readonly #agent: Agent;

  constructor(private readonly secret: string, timeouts = { connect: 2_000, read: 30_000 }) {
    this.#agent = new Agent({ connect: { timeout: timeouts.connect }, headersTimeout: timeouts.read, bodyTimeout: timeouts.read, keepAliveTimeout: 30_000 });
  }

  /** The peer's fill of `digest` from `offset`; undefined when the peer has neither fill nor blob. Throws when the peer cannot be reached. */
  async open(peerUrl: string, digest: string, offset: number): Promise<PeerFill | undefined> {
    const url = new URL(`fills/${encodeURIComponent(digest)}`, peerUrl.endsWith('/') ? peerUrl : `${peerUrl}/`);
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    headers.authorization = `Bearer ${this.secret}`;
    const res = await requestUrl(this.#agent, url, { headers });
    if (res.statusCode === 404) {
      await res.body.dump();
      return undefined;
    }
    if (res.statusCode === 401) {
      await res.body.dump();
      throw new PeerRefusedError(`peer ${url.origin} refused the request (401)`);
    }
    const total = Number(res.headers['x-airlock-blob-size']);
    if ((res.statusCode !== 200 && res.statusCode !== 206) || !Number.isSafeInteger(total)) {
      await res.body.dump();
      throw new Error(`peer ${url.origin} answered ${res.statusCode} for ${digest}`);
    }
    return { total, start: res.statusCode === 206 ? offset : 0, body: res.body };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
