/**
 * sha256 on another thread, for bytes hashed twice (a volume's checksum, and each blob's digest
 * inside it), so the second hash does not run on the main thread. OffThreadHash takes bytes
 * the writer already holds (copied to the worker; at most MAX_BACKLOG bytes wait there before
 * `update` asks the caller to wait); BesideReadHash reads the files itself.
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

const FILE_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const at = new Int32Array(workerData.shared);
const LEAD = workerData.lead;
const buf = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', ({ file, volume }) => {
  let fd;
  try {
    fd = openSync(file, 'r');
    const hash = createHash('sha256');
    for (let mib = 0; ; mib++) {
      // Never more than LEAD MiB ahead of the reader, so both reads meet in the page cache.
      for (;;) {
        const v = Atomics.load(at, 0);
        const m = Atomics.load(at, 1);
        if (v > volume || (v === volume && mib < m + LEAD)) break;
        Atomics.wait(at, 1, m, 200);
      }
      let n = 0;
      while (n < buf.length) {
        const r = readSync(fd, buf, n, buf.length - n, null);
        if (r === 0) break;
        n += r;
      }
      hash.update(n === buf.length ? buf : buf.subarray(0, n));
      if (n < buf.length) break;
    }
    parentPort.postMessage({ volume, digest: hash.digest('hex') });
  } catch (e) {
    parentPort.postMessage({ volume, error: String(e && e.message || e) });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
});
`;

/**
 * The sha256 of files that are also being read, computed by a worker that reads them itself:
 * the reader only reports how far it got (no bytes cross threads), and the worker stays a few
 * MiB ahead of it, so a disc is read once and the two reads share the page cache. Handing every
 * chunk to a worker instead cost more in copies than the hash (bench/PERFORMANCE.md, volumes).
 */
export class BesideReadHash {
  readonly #shared = new SharedArrayBuffer(8);
  readonly #at = new Int32Array(this.#shared);
  readonly #worker = new Worker(FILE_CODE, { eval: true, workerData: { shared: this.#shared, lead: 64 } });
  readonly #pending = new Map<number, { resolve(hex: string): void; reject(e: Error): void }>();
  #failure: Error | undefined;

  constructor() {
    this.#worker.unref();
    this.#worker.on('message', (m: { volume: number; digest?: string; error?: string }) => {
      const p = this.#pending.get(m.volume);
      this.#pending.delete(m.volume);
      if (m.digest !== undefined) p?.resolve(m.digest);
      else p?.reject(new Error(m.error));
    });
    this.#worker.on('error', (e) => {
      this.#failure = e;
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    });
  }

  /** Starts hashing `file`, the `index`th read in order; resolves to its hex digest. */
  start(file: string, index: number): Promise<string> {
    if (this.#failure) return Promise.reject(this.#failure);
    this.#progress(index, 0);
    const digest = new Promise<string>((resolve, reject) => this.#pending.set(index, { resolve, reject }));
    this.#worker.postMessage({ file, volume: index });
    return digest;
  }

  /** The reader has read `bytes` of the `index`th file. */
  read(index: number, bytes: number): void {
    this.#progress(index, Math.floor(bytes / 2 ** 20));
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }

  #progress(index: number, mib: number): void {
    // The count first: a worker seeing the new file with the old count would run ahead.
    Atomics.store(this.#at, 1, mib);
    Atomics.store(this.#at, 0, index);
    Atomics.notify(this.#at, 1);
  }
}
