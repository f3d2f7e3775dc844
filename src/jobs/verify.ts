/**
 * Verify: re-hashes every blob and checks every link and manifest reference of the store.
 *
 * Problems (non-zero exit): a blob whose content does not hash to its name; a link that does not
 * hold a digest, or names another digest than its path, or names a blob the store lacks; a tag
 * whose manifest revision is gone; a revision whose blob is not a manifest. Reported but not
 * problems: image manifests whose layers were never pulled (a pull-through cache holds what
 * clients asked for) and an index's children left out by a platform filter.
 *
 * `--repair` moves corrupt blobs to .airlock/quarantine and removes the links that need them
 * (and the dangling and unreadable ones), so the store serves only what it can serve whole; the
 * next pull fetches the removed content again.
 */
import type { Logger } from '../logging/logger.js';
import { createHasher, Digest } from '../oci/digest.js';
import { blobDescriptors, parseManifest } from '../oci/manifest.js';
import type { LinkFile } from '../storage/link-store.js';
import type { Store } from '../storage/store.js';

export interface VerifyProblem {
  kind: 'corrupt-blob' | 'dangling-link' | 'invalid-link' | 'invalid-manifest';
  /** The blob's digest or the link's description. */
  item: string;
  detail: string;
  repaired?: boolean;
}

export interface VerifyReport {
  blobs: number;
  bytes: number;
  repositories: number;
  links: number;
  manifests: number;
  /** Image manifests with blobs never pulled: name@digest. */
  incomplete: string[];
  problems: VerifyProblem[];
  quarantined: string[];
  ms: number;
}

function describe(f: LinkFile): string {
  switch (f.kind) {
    case 'layer':
      return `${f.name}: layer link ${f.digest.toString()}`;
    case 'revision':
      return `${f.name}: manifest revision ${f.digest.toString()}`;
    case 'tag-current':
      return `${f.name}:${f.tag}: tag`;
    case 'tag-index':
      return `${f.name}:${f.tag}: tag index entry ${f.digest.toString()}`;
  }
}

export class Verifier {
  constructor(private readonly store: Store, private readonly opts: { repair: boolean; concurrency?: number; onProgress?(blobs: number, bytes: number): void }, private readonly log: Logger) {}

  async run(): Promise<VerifyReport> {
    const started = Date.now();
    const report: VerifyReport = { blobs: 0, bytes: 0, repositories: 0, links: 0, manifests: 0, incomplete: [], problems: [], quarantined: [], ms: 0 };
    const corrupt = new Set<string>();
    // A few workers pulling from one walk of blobs/: bounded memory whatever the store's size.
    const walk = this.store.blobs.all();
    const worker = async () => {
      for (;;) {
        const next = await walk.next();
        if (next.done) return;
        const d = next.value;
        const r = await this.#hash(d);
        if (!r) continue;
        report.blobs++;
        report.bytes += r.size;
        this.opts.onProgress?.(report.blobs, report.bytes);
        if (r.hex !== d.hex) {
          corrupt.add(d.toString());
          report.problems.push({ kind: 'corrupt-blob', item: d.toString(), detail: `content hashes to ${d.algorithm}:${r.hex}` });
        }
      }
    };
    await Promise.all(Array.from({ length: this.opts.concurrency ?? 2 }, worker));

    const bad: Array<{ file: LinkFile; why: VerifyProblem }> = [];
    const missing = async (d: Digest) => corrupt.has(d.toString()) || (await this.store.blobs.stat(d)) === undefined;
    const link = async (file: LinkFile): Promise<Digest | undefined> => {
      report.links++;
      let target: Digest | undefined;
      try {
        target = await this.store.links.readLayoutLink(file);
      } catch (e) {
        bad.push({ file, why: { kind: 'invalid-link', item: describe(file), detail: (e as Error).message } });
        return undefined;
      }
      if (!target) return undefined;
      if (file.kind !== 'tag-current' && !target.equals(file.digest)) {
        bad.push({ file, why: { kind: 'invalid-link', item: describe(file), detail: `holds ${target.toString()}, not the digest in its path` } });
        return undefined;
      }
      if (await missing(target)) {
        bad.push({ file, why: { kind: 'dangling-link', item: describe(file), detail: `names ${target.toString()}, which the store ${corrupt.has(target.toString()) ? 'holds corrupt' : 'lacks'}` } });
        return undefined;
      }
      return target;
    };

    for await (const name of this.store.links.repositories()) {
      report.repositories++;
      const layers = new Set<string>();
      for (const d of await this.store.links.layers(name)) if (await link({ kind: 'layer', name, digest: d })) layers.add(d.toString());
      const revisions = new Set<string>();
      for (const d of await this.store.links.revisions(name)) {
        const file: LinkFile = { kind: 'revision', name, digest: d };
        if (!(await link(file))) continue;
        report.manifests++;
        let parsed;
        try {
          const m = await this.store.blobs.readManifest(d);
          if (!m) continue;
          parsed = parseManifest(m.bytes);
        } catch (e) {
          bad.push({ file, why: { kind: 'invalid-manifest', item: describe(file), detail: (e as Error).message } });
          continue;
        }
        revisions.add(d.toString());
        if (parsed.kind === 'image') {
          const lacking = [];
          for (const b of blobDescriptors(parsed)) if (!layers.has(b.digest.toString()) || (await missing(b.digest))) lacking.push(b.digest.toString());
          if (lacking.length) report.incomplete.push(`${name}@${d.toString()}`);
        }
      }
      for (const tag of await this.store.links.tagDirectories(name)) {
        for (const d of await this.store.links.tagHistory(name, tag)) await link({ kind: 'tag-index', name, tag, digest: d });
        const file: LinkFile = { kind: 'tag-current', name, tag };
        const target = await link(file);
        if (target && !revisions.has(target.toString())) {
          bad.push({ file, why: { kind: 'dangling-link', item: describe(file), detail: `names manifest ${target.toString()}, which ${name} does not hold` } });
        }
      }
    }
    for (const b of bad) report.problems.push(b.why);

    if (this.opts.repair) {
      for (const p of report.problems) {
        if (p.kind !== 'corrupt-blob') continue;
        const d = Digest.parse(p.item);
        const to = await this.store.blobs.quarantine(d);
        report.quarantined.push(to);
        p.repaired = true;
        this.log.warn({ digest: p.item, quarantine: to }, 'corrupt blob quarantined');
      }
      for (const b of bad) {
        await this.store.links.deleteLayoutLink(b.file);
        b.why.repaired = true;
        this.log.warn({ link: b.why.item, why: b.why.detail }, 'link removed');
      }
    }
    report.ms = Date.now() - started;
    return report;
  }

  async #hash(d: Digest): Promise<{ hex: string; size: number } | undefined> {
    const s = await this.store.blobs.open(d);
    if (!s) return undefined;
    const h = createHasher(d.algorithm);
    let size = 0;
    for await (const c of s) {
      h.update(c as Buffer);
      size += (c as Buffer).length;
    }
    return { hex: h.digest('hex'), size };
  }
}
