/**
 * The bundle format: a plain tar of the standard layout (so `tar -xf B.tar -C /var/lib/registry`
 * gives a directory registry:2 serves), with two extra files at the top:
 *
 *   airlock-bundle.json   first entry: images, tags → digests, platforms, every blob (digest,
 *                         size) the tar holds, the blobs earlier bundles of its chain provide,
 *                         created-at, source. An importer reads it before any blob.
 *   airlock-kit/…tar.gz   freeze --with-airlock: airlock's release kit, right after the header
 *   docker/registry/v2/…  blobs first, then links (layers, revisions, tag index, current)
 *   SHA256SUMS            `sha256sum -c SHA256SUMS` in the extracted directory checks every
 *                         other file (a truncated bundle has none); the last entry unless signed
 *   SHA256SUMS.sig        a signed bundle's last entry: ed25519 over SHA256SUMS (signature.ts),
 *                         which covers every other file; the header names the signer's key id
 *
 * A bundle's id is the sha256 of its airlock-bundle.json bytes; an incremental bundle names its
 * base by that id.
 */
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import { z } from 'zod';
import { Digest } from '../oci/digest.js';
import { BundleError } from './bundle-error.js';

export { BundleError };

export const BUNDLE_JSON = 'airlock-bundle.json';
export const SUMS = 'SHA256SUMS';
export const SUMS_SIG = 'SHA256SUMS.sig';
/** Where a bundle carries airlock's release kit, outside the layout. */
export const KIT_DIR = 'airlock-kit';
export const BUNDLE_FORMAT = 'airlock-bundle/v1';
/** Bound on the JSON header (a list of every blob: ≈100 bytes a blob). */
export const MAX_BUNDLE_JSON = 256 * 2 ** 20;

const digest = z.string().refine((s) => Digest.tryParse(s) !== undefined, { message: 'expected a digest' });

export const bundleSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  createdAt: z.string(),
  source: z.object({ host: z.string(), airlock: z.string() }),
  base: z.object({ id: digest, createdAt: z.string() }).nullable(),
  images: z.array(z.object({ name: z.string(), tag: z.string().optional(), digest, mediaType: z.string(), platforms: z.array(z.string()) })),
  blobs: z.array(z.object({ digest, size: z.number().int().min(0) })),
  /** Blobs the earlier bundles of the chain hold (so `--since` this bundle leaves them out too). */
  baseBlobs: z.array(digest),
  files: z.number().int().min(0),
  /** The site inventory this bundle was cut against (freeze --have): it holds only what that site lacked. */
  inventory: z.object({ id: digest, createdAt: z.string(), host: z.string() }).optional(),
  /** airlock itself (freeze --with-airlock): its release kit, carried outside the layout under airlock-kit/. */
  kit: z.object({ file: z.string().regex(/^airlock-kit\/[^/]+\.tar\.gz$/), size: z.number().int().min(0) }).optional(),
  /** The key that signed SHA256SUMS (SHA256SUMS.sig); absent when unsigned. */
  signer: z.object({ keyId: z.string().regex(/^sha256:[0-9a-f]{64}$/) }).optional(),
});

export type BundleManifest = z.infer<typeof bundleSchema>;

export function bundleId(json: Uint8Array): string {
  return `sha256:${createHash('sha256').update(json).digest('hex')}`;
}

export function parseBundleJson(bytes: Buffer, file: string): BundleManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new BundleError(`${file}: ${BUNDLE_JSON} is not valid JSON: ${(e as Error).message}`);
  }
  const r = bundleSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new BundleError(`${file}: ${BUNDLE_JSON} is not an airlock bundle header (${i?.path.join('.') || 'top level'}: ${i?.message ?? 'invalid'})`);
  }
  return r.data;
}

/** Reads only the header of a bundle (its first entry), for `freeze --since`. */
export async function readBundleHeader(file: string): Promise<{ manifest: BundleManifest; id: string }> {
  const extract = tar.extract();
  const input = createReadStream(file);
  input.on('error', (e) => extract.destroy(e));
  input.pipe(extract);
  try {
    for await (const entry of extract) {
      if (entry.header.name.replace(/^\.\//, '') !== BUNDLE_JSON) throw new BundleError(`${file}: not an airlock bundle (its first entry is ${entry.header.name}, not ${BUNDLE_JSON})`);
      if (entry.header.size === undefined || entry.header.size > MAX_BUNDLE_JSON) throw new BundleError(`${file}: ${BUNDLE_JSON} is too large`);
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const bytes = Buffer.concat(chunks);
      return { manifest: parseBundleJson(bytes, file), id: bundleId(bytes) };
    }
    throw new BundleError(`${file}: empty archive, not an airlock bundle`);
  } catch (e) {
    if (e instanceof BundleError) throw e;
    throw new BundleError(`${file}: cannot read the bundle: ${(e as Error).message}`, { cause: e });
  } finally {
    input.destroy();
    extract.destroy();
  }
}

/** An image of a bundle as `name:tag`, or `name@digest` when it has no tag. */
export function imageName(i: { name: string; tag?: string; digest: string }): string {
  return i.tag !== undefined ? `${i.name}:${i.tag}` : `${i.name}@${i.digest}`;
}
