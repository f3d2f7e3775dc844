/**
 * A sha256 computed on another thread. Reading a set of volumes hashes every byte twice (each
 * volume's checksum, and each blob's digest inside it); on the main thread that halved an
 * import's rate, so the volume's hash runs beside it. Chunks are copied to the worker; at most
 * MAX_BACKLOG bytes wait there before `update` asks the caller to wait.
 */
import { Worker } from 'node:worker_threads';

const CODE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m.chunk) {
    hash.update(m.chunk);
    parentPort.postMessage({ done: m.chunk.byteLength });
  } else if (m.digest) {
    parentPort.postMessage({ digest: hash.digest('hex') });
    hash = createHash('sha256');
  }
});
`;

const MAX_BACKLOG = 32 * 2 ** 20;

export class OffThreadHash {
  readonly #worker = new Worker(CODE, { eval: true });
  #backlog = 0;
  #drained: (() => void) | undefined;
  #digest: ((hex: string) => void) | undefined;
  #failure: Error | undefined;

  constructor() {
    this.#worker.unref();
    this.#worker.on('message', (m: { done?: number; digest?: string }) => {
      if (m.done !== undefined) {
        this.#backlog -= m.done;
        if (this.#backlog <= MAX_BACKLOG / 2) this.#wake();
      } else if (m.digest !== undefined) this.#digest?.(m.digest);
    });
    this.#worker.on('error', (e) => {
      this.#failure = e;
      this.#wake();
    });
  }

  /** Adds `chunk`; resolves at once unless too much waits in the worker. */
  async update(chunk: Buffer): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.#backlog += chunk.length;
    // Exactly the chunk's bytes, copied once and moved (a view would clone its whole buffer).
    const copy = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength);
    this.#worker.postMessage({ chunk: new Uint8Array(copy) }, [copy as ArrayBuffer]);
    if (this.#backlog > MAX_BACKLOG) await new Promise<void>((resolve) => (this.#drained = resolve));
    if (this.#failure) throw this.#failure;
  }

  /** The hex digest of everything added since the last digest; the hash starts over. */
  async digest(): Promise<string> {
    if (this.#failure) throw this.#failure;
    const hex = new Promise<string>((resolve) => (this.#digest = resolve));
    this.#worker.postMessage({ digest: true });
    return hex;
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }

  #wake(): void {
    const d = this.#drained;
    this.#drained = undefined;
    d?.();
  }
}
