/**
 * Import: streams a bundle (bundle.ts) into the store, all or nothing.
 *
 * Every entry is checked while it streams: its path must be a file of the standard layout (or
 * one of the two bundle files), a blob must be listed in the header with its size and hash to
 * its digest, a link must hold a digest consistent with its path. Blobs are staged (temp files,
 * fsynced) and nothing is published until the whole tar has been read, SHA256SUMS matches every
 * entry, and every link and manifest reference is satisfied by the bundle or the store. Then
 * blobs are committed before the links that name them, so even a crash mid-commit leaves no
 * dangling link. On any failure the staged files are removed and the store is as it was.
 *
 * Imported names become local, which the upstreams' allow and deny lists do not govern; so a
 * bundle carrying an image they deny is refused as a whole (before any blob when its header
 * says so, and on its links before anything is published) unless forced.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Logger } from '../logging/logger.js';
import { createHasher, Digest } from '../oci/digest.js';
import { blobDescriptors, parseManifest } from '../oci/manifest.js';
import type { StagedWrite } from '../storage/driver.js';
import { parseLayoutPath } from '../storage/paths.js';
import { publishLinks, type LinkFile } from './publish-links.js';
import type { Store } from '../storage/store.js';
import { BUNDLE_JSON, BundleError, KIT_DIR, MAX_BUNDLE_JSON, SUMS, SUMS_SIG, bundleId, imageName, parseBundleJson, type BundleManifest } from './bundle.js';
import { parseSums, readAll } from './bundle-entries.js';
import { judgeImport, type ImportPolicy } from './import-policy.js';
import type { TrustedKeys } from './signature.js';

export type { ImportPolicy };

export interface ImportReport {
  id: string;
  base: string | null;
  blobsAdded: number;
  bytesAdded: number;
  blobsPresent: number;
  manifests: number;
  tagsAdded: number;
  tagsMoved: number;
  tagsUnchanged: number;
  repositories: number;
  ms: number;
  /** What the allow and deny lists deny, imported anyway (--force, or policy.mode report). */
  policyDenials: string[];
  /** name:tag (or name@digest) of each image the bundle lists, for the audit log. */
  imageNames: string[];
  /** sha256 of the bundle's SHA256SUMS entry. */
  sums: string;
  /** The trusted key whose signature was verified; undefined when none was required. */
  signer?: string;
}



interface StagedBlob {
  digest: Digest;
  size: number;
  /** Undefined when the store already held the blob (verified, not written again). */
  staged?: StagedWrite;
}

const LINK_MAX = 256;
const MAX_SUMS = 256 * 2 ** 20;

export class Importer {
  constructor(private readonly store: Store, private readonly opts: { maxManifestSize: number; onProgress?(done: number, total: number): void; policy?: ImportPolicy; trust?: TrustedKeys }, private readonly log: Logger) {}

  /** `input`: the bundle's bytes when they do not come from `file` alone (volumes). */
  async run(file: string, input: Readable = createReadStream(file, { highWaterMark: 1 << 20 })): Promise<ImportReport> {
    const started = Date.now();
    const blobs = new Map<string, StagedBlob>();
    const links = new Map<string, { file: LinkFile; target: Digest }>();
    const sums = new Map<string, string>();
    let header: BundleManifest | undefined;
    let sumsDigest = '';
    let id = '';
    let listed = new Map<string, number>();
    let sumsFile: Map<string, string> | undefined;
    let sumsBytes: Buffer | undefined;
    let signature: Buffer | undefined;
    let current: string | undefined;
    let previous: string | undefined;
    let done = 0;
    let total = 0;

    const extract = tar.extract();
    // The input's own failure (a missing or corrupt volume) is the cause; the entry being read
    // then fails only with "stream destroyed", which must not be what the operator is told.
    let inputError: Error | undefined;
    input.on('error', (e) => {
      inputError = e;
      extract.destroy(e);
    });
    input.pipe(extract);
    try {
      try {
        for await (const entry of extract) {
          const name = entry.header.name.replace(/^\.\//, '');
          current = name;
          if (entry.header.type === 'directory') {
            entry.resume();
            previous = name;
            current = undefined;
            continue;
          }
          if (entry.header.type !== 'file') throw new BundleError(`entry ${name}: a ${entry.header.type}, but a bundle holds only regular files`);
          const size = entry.header.size ?? 0;
          if (sumsFile && name === SUMS_SIG && !signature) {
            if (size > 1024) throw new BundleError(`entry ${name}: too large for a signature`);
            signature = await readAll(entry, size);
            previous = name;
            current = undefined;
            continue;
          }
          if (sumsFile) throw new BundleError(`entry ${name} follows ${SUMS}, which must be the last entry (but for ${SUMS_SIG})`);
          if (!header) {
            if (name !== BUNDLE_JSON) throw new BundleError(`${file} is not an airlock bundle: its first entry is ${name}, not ${BUNDLE_JSON}`);
            if (size > MAX_BUNDLE_JSON) throw new BundleError(`entry ${name}: too large`);
            const bytes = await readAll(entry, size);
            header = parseBundleJson(bytes, file);
            id = bundleId(bytes);
            // An unsigned bundle, or one signed by a key not trusted, is refused before any blob.
            const untrusted = this.opts.trust?.refuseSigner(`bundle ${file}`, header.signer?.keyId);
            if (untrusted) throw new BundleError(`${untrusted}; nothing was imported`);
            sums.set(name, createHasher('sha256').update(bytes).digest('hex'));
            listed = new Map(header.blobs.map((b) => [b.digest, b.size]));
            // Refused before any blob when the header already names a denied image.
            judgeImport(this.opts.policy, file, header.images);
            total = header.blobs.reduce((a, b) => a + b.size, 0);
          } else if (name === SUMS) {
            if (size > MAX_SUMS) throw new BundleError(`entry ${name}: too large`);
            sumsBytes = await readAll(entry, size);
            sumsDigest = `sha256:${createHasher('sha256').update(sumsBytes).digest('hex')}`;
            sumsFile = parseSums(sumsBytes);
          } else if (name.startsWith(`${KIT_DIR}/`)) {
            // airlock's own kit: checked against the header and SHA256SUMS, never put in the store.
            if (name !== header.kit?.file || size !== header.kit.size) throw new BundleError(`entry ${name}: not the release kit ${BUNDLE_JSON} lists`);
            const hash = createHasher('sha256');
            for await (const c of entry) hash.update(c as Buffer);
            sums.set(name, hash.digest('hex'));
          } else {
            const f = parseLayoutPath(name);
            if (!f) throw new BundleError(`entry ${name}: not a file of the registry layout`);
            if (f.kind === 'blob') {
              const key = f.digest.toString();
              const expected = listed.get(key);
              if (expected === undefined) throw new BundleError(`entry ${name}: blob ${key} is not listed in ${BUNDLE_JSON}`);
              if (expected !== size) throw new BundleError(`entry ${name}: ${size} bytes, but ${BUNDLE_JSON} says ${expected}`);
              if (blobs.has(key)) throw new BundleError(`entry ${name}: appears twice`);
              const { staged, sha256 } = await this.#blob(entry, f.digest, size, name, (n) => {
                done += n;
                this.opts.onProgress?.(done, total);
              });
              blobs.set(key, { digest: f.digest, size, staged });
              sums.set(name, sha256);
            } else {
              if (size > LINK_MAX) throw new BundleError(`entry ${name}: a link of ${size} bytes`);
              const body = await readAll(entry, size);
              const target = Digest.tryParse(body.toString('utf8').trim());
              if (!target) throw new BundleError(`entry ${name}: does not hold a digest`);
              if (f.kind !== 'tag-current' && !target.equals(f.digest)) throw new BundleError(`entry ${name}: names ${target.toString()}, not the digest in its path`);
              links.set(name, { file: f, target });
              sums.set(name, createHasher('sha256').update(body).digest('hex'));
            }
          }
          previous = name;
          current = undefined;
        }
      } catch (e) {
        if (inputError instanceof BundleError) throw inputError;
        if (e instanceof BundleError) throw e;
        const where = current ? `in entry ${current}` : previous ? `after entry ${previous}` : 'at its start';
        throw new BundleError(`${file} is truncated or damaged ${where}: ${(e as Error).message}`, { cause: e });
      }
      // The tar ends before its input does (end-of-archive padding, a volume's tail): read the
      // rest, so a volume set's last checksum is checked before anything is published.
      if (!input.readableEnded) {
        input.unpipe(extract);
        for await (const _ of input) void _;
      }
      if (!header) throw new BundleError(`${file} is empty: not an airlock bundle`);
      if (!sumsFile) throw new BundleError(`${file} is truncated: ${SUMS} (its last entry) is missing${previous ? ` after entry ${previous}` : ''}`);
      const forged = this.opts.trust?.refuseSignature(`bundle ${file}`, header.signer?.keyId, sumsBytes as Buffer, signature);
      if (forged) throw new BundleError(`${forged}; nothing was imported`);
      for (const [name, hex] of sumsFile) {
        const got = sums.get(name);
        if (got === undefined) throw new BundleError(`${file} is incomplete: entry ${name} listed in ${SUMS} is missing`);
        if (got !== hex) throw new BundleError(`entry ${name}: does not match its ${SUMS} line`);
      }
      for (const name of sums.keys()) if (!sumsFile.has(name)) throw new BundleError(`entry ${name}: not listed in ${SUMS}`);
      for (const b of header.blobs) if (!blobs.has(b.digest)) throw new BundleError(`${file} is incomplete: blob ${b.digest} listed in ${BUNDLE_JSON} is missing`);

      const manifests = await this.#checkReferences(header, id, blobs, links);
      // The links are what gets published, whatever the header said.
      const policyDenials = judgeImport(this.opts.policy, file, [...links.values()].map(({ file: f }) => (f.kind === 'tag-current' || f.kind === 'tag-index' ? { name: f.name, tag: f.tag } : { name: f.name })));
      const report = await this.#commit(blobs, links);
      const result: ImportReport = { id, base: header.base?.id ?? null, ...report, manifests, ms: Date.now() - started, policyDenials, imageNames: header.images.map(imageName), sums: sumsDigest, ...(this.opts.trust?.required && header.signer ? { signer: header.signer.keyId } : {}) };
      this.log.info(result, 'bundle imported');
      return result;
    } catch (e) {
      await Promise.all([...blobs.values()].map((b) => b.staged?.abort()));
      throw e;
    } finally {
      input.destroy();
      extract.destroy();
    }
  }

  /** Hashes a blob entry; stages it unless the store already holds it. */
  async #blob(entry: AsyncIterable<unknown>, d: Digest, size: number, name: string, progress: (n: number) => void): Promise<{ staged?: StagedWrite; sha256: string }> {
    const present = await this.store.blobs.stat(d);
    const staged = present?.size === size ? undefined : await this.store.blobs.stage();
    const hash = createHasher(d.algorithm);
    const sha256 = d.algorithm === 'sha256' ? undefined : createHasher('sha256');
    try {
      for await (const chunk of entry) {
        const c = chunk as Buffer;
        hash.update(c);
        sha256?.update(c);
        if (staged) await staged.write(c);
        progress(c.length);
      }
      const hex = hash.digest('hex');
      if (hex !== d.hex) throw new BundleError(`entry ${name}: content does not match its digest (it hashes to ${d.algorithm}:${hex})`);
      if (staged) {
        if (staged.bytesWritten !== size) throw new BundleError(`entry ${name}: ${staged.bytesWritten} bytes, expected ${size}`);
        await staged.seal();
      }
      return { staged, sha256: sha256 ? sha256.digest('hex') : hex };
    } catch (e) {
      await staged?.abort();
      throw e;
    }
  }

  async #has(d: Digest, blobs: Map<string, StagedBlob>): Promise<boolean> {
    return blobs.has(d.toString()) || (await this.store.blobs.stat(d)) !== undefined;
  }

  /**
   * Every link names a blob the bundle or the store holds; every image manifest's config and
   * layers are there and linked in its repository. An index may lack children (a platform-
   * filtered prefetch). Returns the number of manifests.
   */
  async #checkReferences(header: BundleManifest, id: string, blobs: Map<string, StagedBlob>, links: Map<string, { file: LinkFile; target: Digest }>): Promise<number> {
    const missingBase = (what: string) =>
      new BundleError(
        header.base
          ? `${what} is neither in this bundle nor in the store: import its base bundle ${header.base.id} (created ${header.base.createdAt}) first`
          : header.inventory
            ? `${what} is neither in this bundle nor in the store, which the inventory of ${header.inventory.host} taken ${header.inventory.createdAt} said held it (collected or removed since?); take a new inventory and freeze again`
            : `${what} is missing from the bundle (incomplete bundle ${id})`,
      );
    const layerLinks = new Set<string>();
    const revisions = new Set<string>();
    for (const { file } of links.values()) {
      if (file.kind === 'layer') layerLinks.add(`${file.name}@${file.digest.toString()}`);
      if (file.kind === 'revision') revisions.add(`${file.name}@${file.digest.toString()}`);
    }
    let manifests = 0;
    for (const [path, { file, target }] of links) {
      if (!(await this.#has(target, blobs))) throw missingBase(`blob ${target.toString()} named by entry ${path}`);
      if (file.kind === 'tag-current' && !revisions.has(`${file.name}@${target.toString()}`) && !(await this.store.links.hasRevision(file.name, target))) {
        throw missingBase(`manifest ${target.toString()} of tag ${file.name}:${file.tag}`);
      }
      if (file.kind !== 'revision') continue;
      manifests++;
      const bytes = await this.#readBlob(target, blobs);
      let parsed;
      try {
        parsed = parseManifest(bytes);
      } catch (e) {
        throw new BundleError(`entry ${path}: blob ${target.toString()} is not a valid manifest: ${(e as Error).message}`);
      }
      if (parsed.kind === 'index') continue;
      for (const b of blobDescriptors(parsed)) {
        if (!(await this.#has(b.digest, blobs))) throw missingBase(`blob ${b.digest.toString()} of manifest ${file.name}@${target.toString()}`);
        if (!layerLinks.has(`${file.name}@${b.digest.toString()}`) && !(await this.store.links.isBlobLinked(file.name, b.digest))) {
          throw missingBase(`the link of blob ${b.digest.toString()} in ${file.name}`);
        }
      }
    }
    return manifests;
  }

  async #readBlob(d: Digest, blobs: Map<string, StagedBlob>): Promise<Buffer> {
    const staged = blobs.get(d.toString())?.staged;
    if (staged) {
      const reader = await staged.openReader();
      if (!reader) throw new BundleError(`staged blob ${d.toString()} vanished`);
      try {
        const size = staged.bytesWritten;
        if (size > this.opts.maxManifestSize) throw new BundleError(`manifest ${d.toString()} is ${size} bytes, more than http.maxManifestSize`);
        const buf = Buffer.alloc(size);
        let off = 0;
        while (off < size) {
          const n = await reader.read(buf.subarray(off), off);
          if (n === 0) break;
          off += n;
        }
        return buf.subarray(0, off);
      } finally {
        await reader.close();
      }
    }
    const m = await this.store.blobs.readManifest(d);
    if (!m) throw new BundleError(`manifest ${d.toString()} vanished from the store`);
    return m.bytes;
  }

  async #commit(blobs: Map<string, StagedBlob>, links: Map<string, { file: LinkFile; target: Digest }>): Promise<Omit<ImportReport, 'id' | 'base' | 'manifests' | 'ms' | 'policyDenials' | 'imageNames' | 'sums'>> {
    let blobsAdded = 0;
    let bytesAdded = 0;
    let blobsPresent = 0;
    for (const b of blobs.values()) {
      if (!b.staged) {
        blobsPresent++;
        continue;
      }
      await this.store.blobs.commit(b.staged, b.digest);
      blobsAdded++;
      bytesAdded += b.size;
    }
    return { blobsAdded, bytesAdded, blobsPresent, ...(await publishLinks(this.store, links.values())) };
  }
}
