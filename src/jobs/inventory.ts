/**
 * An inventory: what a site's store holds (every blob's digest; per repository its tags, manifests
 * and layer links), written at the disconnected site and carried back, so the connected side can
 * freeze exactly what the site lacks (`freeze --have`). Unlike a bundle chain (`--since`), it
 * stays right when a bundle is lost or a site is rebuilt: it is read off the site itself.
 *
 * JSON, optionally signed: FILE.sig beside it holds an ed25519 signature over its bytes
 * (signature.ts), and the document names the signer's key id.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { createHasher, type Digest } from '../oci/digest.js';
import type { LayoutFile } from '../storage/paths.js';
import type { Store } from '../storage/store.js';
import { BundleError } from './bundle-error.js';
import { signBytes, type SigningKey, type TrustedKeys } from './signature.js';

export const INVENTORY_FORMAT = 'airlock-inventory/v1';
const MAX_INVENTORY = 512 * 2 ** 20;
const digest = z.string().regex(/^sha(256|512):[0-9a-f]{64,128}$/);

const inventorySchema = z.object({
  format: z.literal(INVENTORY_FORMAT),
  createdAt: z.string(),
  source: z.object({ host: z.string(), airlock: z.string() }),
  signer: z.object({ keyId: z.string() }).optional(),
  blobs: z.array(digest),
  repositories: z.record(z.string(), z.object({ tags: z.record(z.string(), digest), manifests: z.array(digest), layers: z.array(digest) })),
});

export type InventoryDocument = z.infer<typeof inventorySchema>;

export interface InventoryReport {
  out: string;
  id: string;
  blobs: number;
  repositories: number;
  tags: number;
  signer?: string;
}

/** Writes the store's inventory to `out` (and `out.sig` when signing), each atomically. */
export async function writeInventory(store: Store, opts: { out: string; version: string; sign?: SigningKey }): Promise<InventoryReport> {
  const blobs: string[] = [];
  for await (const d of store.blobs.all()) blobs.push(d.toString());
  const repositories: InventoryDocument['repositories'] = {};
  let tags = 0;
  for await (const name of store.links.repositories()) {
    const entry = { tags: {} as Record<string, string>, manifests: (await store.links.revisions(name)).map(String).sort(), layers: (await store.links.layers(name)).map(String).sort() };
    for (const tag of (await store.links.listTags(name)) ?? []) {
      const d = await store.links.resolveTag(name, tag);
      if (d) {
        entry.tags[tag] = d.toString();
        tags++;
      }
    }
    repositories[name] = entry;
  }
  const doc: InventoryDocument = {
    format: INVENTORY_FORMAT,
    createdAt: new Date().toISOString(),
    source: { host: hostname(), airlock: opts.version },
    ...(opts.sign ? { signer: { keyId: opts.sign.id } } : {}),
    blobs: blobs.sort(),
    repositories,
  };
  const bytes = Buffer.from(JSON.stringify(doc) + '\n');
  const out = path.resolve(opts.out);
  await writeAtomically(out, bytes);
  if (opts.sign) await writeAtomically(`${out}.sig`, signBytes(bytes, opts.sign));
  else await rm(`${out}.sig`, { force: true });
  return { out, id: idOf(bytes), blobs: blobs.length, repositories: Object.keys(repositories).length, tags, ...(opts.sign ? { signer: opts.sign.id } : {}) };
}

async function writeAtomically(file: string, bytes: Buffer): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.partial`);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(bytes);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

function idOf(bytes: Uint8Array): string {
  return `sha256:${createHasher('sha256').update(bytes).digest('hex')}`;
}

/** What a site holds, as an inventory says, asked by freeze while it plans. */
export class SiteHoldings {
  readonly blobs: ReadonlySet<string>;
  readonly #repos: Map<string, { tags: Map<string, string>; manifests: Set<string>; layers: Set<string> }>;

  constructor(readonly doc: InventoryDocument, readonly id: string, readonly file: string) {
    this.blobs = new Set(doc.blobs);
    this.#repos = new Map(Object.entries(doc.repositories).map(([name, r]) => [name, { tags: new Map(Object.entries(r.tags)), manifests: new Set(r.manifests), layers: new Set(r.layers) }]));
  }

  /** Whether the site already has this link with this target (a tag's index entry goes with its current link). */
  holdsLink(f: Exclude<LayoutFile, { kind: 'blob' }>, target: Digest): boolean {
    const r = this.#repos.get(f.name);
    if (!r) return false;
    switch (f.kind) {
      case 'layer': return r.layers.has(target.toString());
      case 'revision': return r.manifests.has(target.toString());
      case 'tag-index':
      case 'tag-current': return r.tags.get(f.tag) === target.toString();
    }
  }

  /** Whether the site has this image as named: the tag at this digest, or the manifest itself. */
  holdsImage(name: string, tag: string | undefined, d: Digest): boolean {
    const r = this.#repos.get(name);
    if (!r) return false;
    return tag === undefined ? r.manifests.has(d.toString()) : r.tags.get(tag) === d.toString() && r.manifests.has(d.toString());
  }
}

/** Reads and checks an inventory (and FILE.sig); with trusted keys, it must be signed by one. */
export async function readInventory(file: string, trust: TrustedKeys): Promise<SiteHoldings> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BundleError(`cannot read inventory ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
  }
  if (bytes.length > MAX_INVENTORY) throw new BundleError(`inventory ${file} is too large`);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BundleError(`${file} is not an airlock inventory (not JSON; airlock inventory --out writes one)`);
  }
  const parsed = inventorySchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new BundleError(`${file} is not an airlock inventory (${i?.path.join('.') || 'top level'}: ${i?.message ?? 'invalid'})`);
  }
  const signature = await readFile(`${file}.sig`).catch(() => undefined);
  const why = trust.refuseSignature(`inventory ${file}`, parsed.data.signer?.keyId, bytes, signature);
  if (why) throw new BundleError(why);
  return new SiteHoldings(parsed.data, idOf(bytes), file);
}
