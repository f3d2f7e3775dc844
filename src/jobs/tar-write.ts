/** Writing tar entries with tar-stream: whole small files, and files streamed with back-pressure. */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type tar from 'tar-stream';
import { createHasher, type Digest } from '../oci/digest.js';
import { BundleError } from './bundle-error.js';

export async function addEntry(pack: tar.Pack, name: string, body: Buffer, mtime = new Date()): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    pack.entry({ name, size: body.length, mode: 0o644, mtime }, body, (err) => (err ? reject(err) : resolve()));
  });
}

type Entry = ReturnType<tar.Pack['entry']>;

/**
 * Opens entry `name` and writes `source` into it, at most `size` bytes, each chunk shown to
 * `seen` first; resolves with the bytes read (the caller checks them, then calls `finish` or
 * `abort`). `failed` rejects when the output fails (a full disk), so a wait for drain ends with it.
 */
async function pipeEntry(pack: tar.Pack, header: { name: string; size: number; mtime: Date }, source: AsyncIterable<unknown>, failed: Promise<never>, seen: (c: Buffer) => void): Promise<{ n: number; finish(): Promise<void>; abort(why: string): void }> {
  let entryDone!: Promise<void>;
  const entry = await new Promise<Entry>((ready) => {
    entryDone = new Promise<void>((resolve, reject) => {
      ready(pack.entry({ ...header, mode: 0o644 }, (err) => (err ? reject(err) : resolve())));
    });
  });
  entryDone.catch(() => undefined);
  let n = 0;
  for await (const chunk of source) {
    const c = chunk as Buffer;
    n += c.length;
    if (n > header.size) break;
    seen(c);
    if (!entry.write(c)) await Promise.race([once(entry, 'drain'), failed]);
  }
  return {
    n,
    finish: async () => {
      (entry as unknown as { end(): void }).end();
      await Promise.race([entryDone, failed]);
    },
    abort: (why) => {
      // The pack reports it too; the caller's error says what happened.
      entry.on('error', () => undefined);
      entry.destroy(new Error(why));
    },
  };
}

/** Streams `source` as entry `name` of `size` bytes; returns its sha256 (hex). */
export async function addStreamEntry(pack: tar.Pack, name: string, size: number, source: AsyncIterable<unknown>, failed: Promise<never>): Promise<string> {
  const hash = createHasher('sha256');
  const e = await pipeEntry(pack, { name, size, mtime: new Date() }, source, failed, (c) => hash.update(c));
  if (e.n !== size) {
    e.abort('size changed');
    throw new BundleError(`${name} changed while it was being written (${e.n} bytes, expected ${size})`);
  }
  await e.finish();
  return hash.digest('hex');
}

/**
 * Streams a stored blob as entry `name`, re-hashed as it goes: a corrupt blob stops the write
 * with one line (run verify --repair). Resolves with the entry's sha256 (hex), for SHA256SUMS.
 */
export async function addStoredBlob(
  pack: tar.Pack,
  blobs: { open(d: Digest): Promise<Readable | undefined> },
  blob: { name: string; digest: Digest; size: number; mtime: Date },
  failed: Promise<never>,
  progress: (n: number) => void,
): Promise<string> {
  const d = blob.digest;
  const stream = await blobs.open(d);
  if (!stream) throw new BundleError(`blob ${d.toString()} disappeared from the store while it was being written out`);
  const hash = createHasher(d.algorithm);
  const sha256 = d.algorithm === 'sha256' ? undefined : createHasher('sha256');
  let e;
  try {
    e = await pipeEntry(pack, { name: blob.name, size: blob.size, mtime: blob.mtime }, stream, failed, (c) => {
      hash.update(c);
      sha256?.update(c);
      progress(c.length);
    });
  } finally {
    stream.destroy();
  }
  const hex = hash.digest('hex');
  if (e.n !== blob.size || hex !== d.hex) {
    e.abort('corrupt blob');
    throw new BundleError(`blob ${d.toString()} in the store is corrupt (${e.n !== blob.size ? `${e.n} bytes, expected ${blob.size}` : `content hashes to ${d.algorithm}:${hex}`}); run \`airlock verify --repair\` and prefetch it again`);
  }
  await e.finish();
  return sha256 ? sha256.digest('hex') : hex;
}
