/** Writing tar entries with tar-stream: whole small files, and files streamed with back-pressure. */
import { once } from 'node:events';
import type tar from 'tar-stream';
import { createHasher } from '../oci/digest.js';
import { BundleError } from './bundle-error.js';

export async function addEntry(pack: tar.Pack, name: string, body: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    pack.entry({ name, size: body.length, mode: 0o644, mtime: new Date() }, body, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Streams `source` as entry `name` of `size` bytes; returns its sha256 (hex). `failed` rejects
 * when the output fails (a full disk), so a wait for drain ends with it.
 */
export async function addStreamEntry(pack: tar.Pack, name: string, size: number, source: AsyncIterable<unknown>, failed: Promise<never>): Promise<string> {
  let entryDone!: Promise<void>;
  const entry = await new Promise<ReturnType<tar.Pack['entry']>>((ready) => {
    entryDone = new Promise<void>((resolve, reject) => {
      ready(pack.entry({ name, size, mode: 0o644, mtime: new Date() }, (err) => (err ? reject(err) : resolve())));
    });
  });
  entryDone.catch(() => undefined);
  const hash = createHasher('sha256');
  let n = 0;
  for await (const chunk of source) {
    const c = chunk as Buffer;
    n += c.length;
    if (n > size) break;
    hash.update(c);
    if (!entry.write(c)) await Promise.race([once(entry, 'drain'), failed]);
  }
  if (n !== size) {
    entry.destroy(new Error('size changed'));
    throw new BundleError(`${name} changed while it was being written (${n} bytes, expected ${size})`);
  }
  (entry as unknown as { end(): void }).end();
  await Promise.race([entryDone, failed]);
  return hash.digest('hex');
}
