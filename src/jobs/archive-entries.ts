/**
 * The entries of an image archive (a tar, or an OCI layout directory) as archive-load.ts reads
 * them: each regular file is hashed as it streams and, unless it is small metadata, staged in
 * the store's temp space. Tar order is arbitrary (a classic `docker save` may put layer.tar
 * before manifest.json), so every file is staged before anything is resolved.
 *
 * Layer candidates of a classic archive that are not compressed are gzip-compressed on the way
 * in, deterministically (adaptive-gzip.ts), so loading the same archive twice gives the same
 * digests.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { AdaptiveGzip } from './adaptive-gzip.js';
import { createHasher, Digest } from '../oci/digest.js';
import type { StagedWrite } from '../storage/driver.js';
import type { Store } from '../storage/store.js';
import { BundleError } from './bundle-error.js';

export type Compression = 'gzip' | 'zstd' | 'none' | 'other';

export interface SourceEntry {
  name: string;
  type: string;
  size: number;
  linkname?: string;
  body: AsyncIterable<Buffer>;
}

/** A regular file of the archive, read. */
export interface ArchiveFile {
  name: string;
  /** The file's bytes as stored in the archive. */
  raw: { digest: Digest; size: number };
  /** Kept in memory: metadata and small blobs (manifests, configs). */
  bytes?: Buffer;
  /** What would be published: the raw bytes, or their gzip for an uncompressed classic layer. */
  blob?: { digest: Digest; size: number; staged?: StagedWrite; compression: Compression; gzipped: boolean };
  /** sha256 of the uncompressed content (a layer's diff_id), when it could be computed. */
  diffId?: Digest;
  /** Set when the content unpacked past the bound given to readEntry: no diff_id then. */
  unpackedTooLarge?: number;
}

const METADATA_MAX = 16 * 2 ** 20;
const KEEP_MAX = 2 ** 20;

/**
 * Bytes an archive may hold in memory: metadata (refused past its share) and small blobs (kept
 * until the share is spent, then read back from their staged copies).
 */
export class MemoryBudget {
  metadata = 256 * 2 ** 20;
  blobs = 64 * 2 ** 20;
}
const BLOB_PATH = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/;

/** manifest.json, index.json, configs: read into memory, not staged. */
function isMetadata(name: string): boolean {
  return !BLOB_PATH.test(name) && (/(^|\/)[^/]*\.json$/.test(name) || /(^|\/)(json|VERSION|repositories|oci-layout)$/.test(name));
}

/** The entry's path inside the archive: relative, without `.` and `..` (refused: it would point outside). */
export function entryName(raw: string): string {
  if (raw.includes('\0') || raw.includes('\\') || raw.startsWith('/')) throw new BundleError(`entry ${JSON.stringify(raw)}: not a relative path inside the archive`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new BundleError(`entry ${JSON.stringify(raw)}: a path that leads outside the archive`);
  return parts.join('/');
}

/** A link entry's target, as a path inside the archive. */
export function linkTarget(name: string, linkname: string, symbolic: boolean): string {
  if (linkname.startsWith('/')) throw new BundleError(`entry ${name}: links to an absolute path (${linkname})`);
  const joined = path.posix.normalize(symbolic ? path.posix.join(path.posix.dirname(name), linkname) : linkname);
  if (joined === '..' || joined.startsWith('../')) throw new BundleError(`entry ${name}: links outside the archive (${linkname})`);
  return entryName(joined);
}

function compressionOf(head: Buffer | undefined): Compression {
  if (!head || head.length < 4) return 'none';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.subarray(0, 3).toString('latin1') === 'BZh' || (head[0] === 0xfd && head.subarray(1, 4).toString('latin1') === '7zX')) return 'other';
  return 'none';
}

/** The first chunk, and an iterable of all chunks (that one included). */
async function peek(body: AsyncIterable<Buffer>): Promise<{ head: Buffer | undefined; all: AsyncIterable<Buffer> }> {
  const it = body[Symbol.asyncIterator]();
  const first = await it.next();
  const head = first.done ? undefined : first.value;
  async function* all(): AsyncGenerator<Buffer> {
    if (head) yield head;
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      yield n.value;
    }
  }
  return { head, all: all() };
}

/** A digest named by a `blobs/<alg>/<hex>` path, or undefined. */
export function blobPathDigest(name: string): Digest | undefined {
  const m = BLOB_PATH.exec(name);
  return m ? Digest.tryParse(`${m[1]}:${m[2]}`) : undefined;
}

/** Reads one regular file: hashes it, keeps or stages it (or both). Throws BundleError naming it. */
export async function readEntry(store: Store, e: SourceEntry, budget: MemoryBudget, opts: { maxUnpacked?: number } = {}): Promise<ArchiveFile> {
  const name = e.name;
  if (isMetadata(name)) {
    if (e.size > METADATA_MAX) throw new BundleError(`entry ${name}: ${e.size} bytes, too large for image metadata`);
    budget.metadata -= e.size;
    if (budget.metadata < 0) throw new BundleError(`entry ${name}: the archive's metadata files add up to more than 256 MiB`);
    const chunks: Buffer[] = [];
    for await (const c of e.body) chunks.push(c);
    const bytes = Buffer.concat(chunks);
    if (bytes.length !== e.size) throw new BundleError(`entry ${name}: ${bytes.length} bytes, its header says ${e.size}`);
    const digest = Digest.parse(`sha256:${createHasher('sha256').update(bytes).digest('hex')}`);
    return { name, raw: { digest, size: bytes.length }, bytes };
  }
  const named = blobPathDigest(name);
  if (BLOB_PATH.test(name) && !named) throw new BundleError(`entry ${name}: not a valid digest in a blobs/ path`);
  const { head, all } = await peek(e.body);
  const compression = compressionOf(head);
  const algorithm = named?.algorithm ?? 'sha256';
  const raw = createHasher(algorithm);
  const present = named ? await store.blobs.stat(named) : undefined;
  const gzip = !named && compression === 'none';
  const staged = present?.size === e.size ? undefined : await store.blobs.stage();
  const keep: Buffer[] | undefined = e.size <= KEEP_MAX && budget.blobs >= e.size ? [] : undefined;
  if (keep) budget.blobs -= e.size;
  // The diff_id of a gzip layer: its content, unpacked as it streams.
  const gunzip = compression === 'gzip' ? createGunzip() : undefined;
  const diff = createHasher('sha256');
  let gunzipFailed = false;
  let unpacked = 0;
  let tooLarge = false;
  gunzip?.on('data', (c: Buffer) => {
    unpacked += c.length;
    // A layer that unpacks without end (a bomb inside the archive) costs CPU, not disk: bounded too.
    if (opts.maxUnpacked !== undefined && unpacked > opts.maxUnpacked) {
      tooLarge = gunzipFailed = true;
      gunzip.destroy();
      return;
    }
    diff.update(c);
  });
  gunzip?.on('error', () => (gunzipFailed = true));
  const out = createHasher('sha256');
  let size = 0;
  let outSize = 0;
  try {
    const source = async function* (): AsyncGenerator<Buffer> {
      for await (const c of all) {
        raw.update(c);
        size += c.length;
        keep?.push(c);
        if (gunzip && !gunzipFailed && !gunzip.write(c)) await Promise.race([once(gunzip, 'drain'), once(gunzip, 'close')]).catch(() => (gunzipFailed = true));
        yield c;
      }
    };
    const sink = async (src: AsyncIterable<Buffer>): Promise<void> => {
      for await (const c of src) {
        out.update(c);
        outSize += c.length;
        if (staged) await staged.write(c);
      }
    };
    if (gzip) await pipeline(source, new AdaptiveGzip(6), sink);
    else await sink(source());
    if (size !== e.size) throw new BundleError(`entry ${name}: ${size} bytes, its header says ${e.size}`);
    const rawDigest = Digest.parse(`${algorithm}:${raw.digest('hex')}`);
    if (named && !rawDigest.equals(named)) throw new BundleError(`entry ${name}: content does not match its digest (it hashes to ${rawDigest.toString()})`);
    let diffId: Digest | undefined;
    if (compression === 'none') diffId = algorithm === 'sha256' ? rawDigest : undefined;
    else if (gunzip) {
      gunzip.end();
      if (!gunzipFailed) await once(gunzip, 'end').catch(() => (gunzipFailed = true));
      if (!gunzipFailed) diffId = Digest.parse(`sha256:${diff.digest('hex')}`);
    }
    await staged?.seal();
    const blobDigest = gzip ? Digest.parse(`sha256:${out.digest('hex')}`) : rawDigest;
    const file: ArchiveFile = { name, raw: { digest: rawDigest, size }, blob: { digest: blobDigest, size: outSize, staged, compression, gzipped: gzip }, diffId, ...(tooLarge ? { unpackedTooLarge: opts.maxUnpacked } : {}) };
    if (keep) file.bytes = Buffer.concat(keep);
    return file;
  } catch (err) {
    gunzip?.destroy();
    await staged?.abort();
    throw err;
  }
}

/** The files of an OCI layout directory, as entries (symbolic links and special files refused). */
export async function* directoryEntries(root: string, rel = ''): AsyncGenerator<SourceEntry> {
  for (const d of (await readdir(path.join(root, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const name = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) yield* directoryEntries(root, name);
    else if (d.isFile()) {
      const st = await lstat(path.join(root, name));
      yield { name, type: 'file', size: st.size, body: createReadStream(path.join(root, name), { highWaterMark: 1 << 20 }) };
    } else yield { name, type: d.isSymbolicLink() ? 'symlink' : 'special', size: 0, body: (async function* () {})() };
  }
}
