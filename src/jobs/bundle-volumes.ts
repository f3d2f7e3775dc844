/**
 * Bundles on removable media: the tar cut into volumes NAME.000, NAME.001, … of a fixed size
 * (the bytes in order, so `cat NAME.[0-9]* | tar -x` gives the plain layout), with
 * NAME-volumes.sha256 beside them: one `sha256sum` line per volume, so a bad disc is found with
 * `sha256sum -c --ignore-missing` and re-burned alone. Its name does not start with `NAME.`, so
 * `cat NAME.*` never takes it for a volume.
 *
 * Writing: every volume is a temp file, fsynced, renamed into place only when the whole bundle
 * is written. Reading: the volumes as one stream, each hashed and checked against its line as it
 * ends, naming a missing or corrupt volume.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { BundleError } from './bundle-error.js';
import { BesideReadHash, OffThreadHash } from './hash-worker.js';

export const MAX_VOLUMES = 1000;
export const MIN_VOLUME_SIZE = 64 * 1024;

export function volumeName(base: string, i: number): string {
  return `${base}.${String(i).padStart(3, '0')}`;
}

export function volumeSumsName(base: string): string {
  return `${base}-volumes.sha256`;
}

/** Splits what is written into volumes; `commit` publishes them, `abort` removes every temp file. */
export class VolumeWriter extends Writable {
  readonly #base: string;
  readonly #size: number;
  readonly #tag = randomBytes(6).toString('hex');
  readonly #temps: string[] = [];
  readonly #sums: string[] = [];
  #fh: FileHandle | undefined;
  readonly #hash = new OffThreadHash();
  #inVolume = 0;

  constructor(base: string, size: number) {
    super({ highWaterMark: 1 << 20 });
    this.#base = path.resolve(base);
    this.#size = size;
  }

  get volumes(): number {
    return this.#temps.length;
  }

  #temp(i: number): string {
    return path.join(path.dirname(this.#base), `.${path.basename(volumeName(this.#base, i))}.${this.#tag}.partial`);
  }

  async #closeVolume(): Promise<void> {
    if (!this.#fh) return;
    await this.#fh.datasync();
    await this.#fh.close();
    this.#fh = undefined;
    this.#sums.push(`${await this.#hash.digest()}  ${path.basename(volumeName(this.#base, this.#temps.length - 1))}`);
    this.#inVolume = 0;
  }

  async #write(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (!this.#fh || this.#inVolume === this.#size) {
        await this.#closeVolume();
        if (this.#temps.length === MAX_VOLUMES) throw new BundleError(`the bundle needs more than ${MAX_VOLUMES} volumes of ${this.#size} bytes; choose a larger --volume-size`);
        const t = this.#temp(this.#temps.length);
        this.#temps.push(t);
        this.#fh = await open(t, 'wx');
      }
      const n = Math.min(chunk.length - at, this.#size - this.#inVolume);
      const part = chunk.subarray(at, at + n);
      await Promise.all([this.#fh.write(part), this.#hash.update(part)]);
      this.#inVolume += n;
      at += n;
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.#write(chunk).then(() => done(), done);
  }

  override _final(done: (e?: Error | null) => void): void {
    this.#closeVolume().then(() => done(), done);
  }

  /** Renames every volume into place and writes the checksum file; returns the volume paths. */
  async commit(): Promise<string[]> {
    await this.#hash.close();
    const out: string[] = [];
    for (const [i, t] of this.#temps.entries()) {
      const final = volumeName(this.#base, i);
      await rename(t, final);
      out.push(final);
    }
    // Volumes of an earlier, longer bundle of the same name would join this one under `cat NAME.*`.
    const prefix = `${path.basename(this.#base)}.`;
    for (const f of await readdir(path.dirname(this.#base))) {
      if (f.startsWith(prefix) && /^\d{3}$/.test(f.slice(prefix.length)) && Number(f.slice(prefix.length)) >= this.#temps.length) await rm(path.join(path.dirname(this.#base), f));
    }
    const sums = volumeSumsName(this.#base);
    const tmp = `${sums}.${this.#tag}.partial`;
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(this.#sums.join('\n') + '\n');
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, sums);
    return out;
  }

  async abort(): Promise<void> {
    await this.#hash.close();
    await this.#fh?.close().catch(() => undefined);
    this.#fh = undefined;
    await Promise.all(this.#temps.map((t) => rm(t, { force: true })));
  }
}

/** `NAME.000` (or any volume of the set) → the set's base name; undefined when not a volume. */
export function volumeBase(file: string): string | undefined {
  const m = /^(.+)\.(\d{3})$/.exec(file);
  return m ? m[1] : undefined;
}

/**
 * The volumes of a set as one stream, from the first. With the checksum file, its lines say
 * how many volumes there are and each is checked as it ends; without it, volumes are read until
 * the next one is absent (the tar then says whether it is complete).
 */
export class VolumeReader {
  readonly base: string;
  #current: string | undefined;
  #index = -1;
  #absent: string | undefined;

  private constructor(base: string, private readonly expected: Array<{ file: string; sha256: string }> | undefined) {
    this.base = base;
  }

  static async open(first: string): Promise<VolumeReader> {
    const base = volumeBase(path.resolve(first)) as string;
    if (!first.endsWith('.000')) throw new BundleError(`${first}: a set of volumes is imported from its first, ${path.basename(volumeName(base, 0))}`);
    let text: string | undefined;
    try {
      text = await readFile(volumeSumsName(base), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new BundleError(`cannot read ${volumeSumsName(base)}: ${(e as Error).message}`);
    }
    let expected: Array<{ file: string; sha256: string }> | undefined;
    if (text !== undefined) {
      expected = [];
      for (const [i, line] of text.split('\n').filter(Boolean).entries()) {
        const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
        if (!m || m[2] !== path.basename(volumeName(base, i))) throw new BundleError(`${volumeSumsName(base)}: line ${i + 1} is not the checksum of ${path.basename(volumeName(base, i))}`);
        expected.push({ file: volumeName(base, i), sha256: m[1] as string });
      }
      if (expected.length === 0) throw new BundleError(`${volumeSumsName(base)} lists no volume`);
    }
    return new VolumeReader(base, expected);
  }

  /** The volume being read, for messages. */
  get current(): string | undefined {
    return this.#current;
  }

  /** Without the checksum file: the volume whose absence ended the set. */
  get absent(): string | undefined {
    return this.#absent;
  }

  stream(): Readable {
    return Readable.from(this.#chunks(), { objectMode: false });
  }

  async *#chunks(): AsyncGenerator<Buffer> {
    // Without the checksum file there is nothing to check a volume against: no worker.
    const hash = this.expected ? new BesideReadHash() : undefined;
    try {
      yield* this.#volumes(hash);
    } finally {
      await hash?.close();
    }
  }

  async *#volumes(hash: BesideReadHash | undefined): AsyncGenerator<Buffer> {
    for (let i = 0; ; i++) {
      const file = volumeName(this.base, i);
      const want = this.expected?.[i];
      if (this.expected && !want) return;
      let input: ReadStream;
      try {
        await stat(file);
        input = createReadStream(file, { highWaterMark: 1 << 20 });
      } catch {
        if (i > 0 && !this.expected) {
          this.#absent = file;
          return;
        }
        throw new BundleError(`volume ${path.basename(file)} is missing${this.expected ? ` (${volumeSumsName(path.basename(this.base))} lists ${this.expected.length})` : ''}; nothing was imported`);
      }
      this.#current = file;
      this.#index = i;
      const digest = want ? hash?.start(file, i) : undefined;
      // Awaited only at the volume's end; a rejection before that must not go unhandled.
      digest?.catch(() => undefined);
      let read = 0;
      for await (const chunk of input) {
        read += (chunk as Buffer).length;
        hash?.read(i, read);
        yield chunk as Buffer;
      }
      if (!want || !digest) continue;
      let hex: string;
      try {
        hex = await digest;
      } catch (e) {
        throw new BundleError(`cannot read volume ${path.basename(file)}: ${(e as Error).message}; nothing was imported`);
      }
      if (hex !== want.sha256) throw this.#corrupt(file, hex, want.sha256);
    }
  }

  /**
   * After the bundle failed to parse partway through a volume: that volume read whole and checked
   * against its line. A bad burn is then named as such ("re-burn it"), not as whatever the tar
   * parser met first in its damaged bytes; undefined when the volume is as written.
   */
  async corruptCurrent(): Promise<BundleError | undefined> {
    const want = this.expected?.[this.#index];
    if (!want) return undefined;
    const hash = createHash('sha256');
    try {
      for await (const c of createReadStream(want.file, { highWaterMark: 1 << 20 })) hash.update(c as Buffer);
    } catch {
      return undefined;
    }
    const hex = hash.digest('hex');
    return hex === want.sha256 ? undefined : this.#corrupt(want.file, hex, want.sha256);
  }

  #corrupt(file: string, hex: string, want: string): BundleError {
    return new BundleError(`volume ${path.basename(file)} is corrupt (its sha256 is ${hex}, ${path.basename(volumeSumsName(this.base))} says ${want}): re-burn it; nothing was imported`);
  }
}
