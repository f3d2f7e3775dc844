/**
 * The console's image and repository pages, read from the store alone (never an upstream): the
 * manifest or index, the config blob (bounded), the referrers grouped by artifact type, and the
 * tags that point at it.
 */
import type { ImageConfig, ImageDetail } from '../../http/console-service.js';
import { referrersIndex } from '../../mirror/referrers.js';
import type { Digest } from '../../oci/digest.js';
import { parseManifest, type ParsedManifest } from '../../oci/manifest.js';
import { lookupManifestReference, type ManifestReference } from '../../oci/reference.js';
import type { AccessTimes } from '../../storage/access-times.js';
import { blobDataPath } from '../../storage/paths.js';
import type { Store } from '../../storage/store.js';
import type { IndexClient } from './index-client.js';

/** Image configs are a few KiB; a larger one is not shown. */
const MAX_CONFIG = 1 << 20;

function bad(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

export function parseRef(ref: string): ManifestReference {
  try {
    return lookupManifestReference(ref);
  } catch (e) {
    throw bad(`ref is a tag or a digest: ${(e as Error).message}`);
  }
}

const strings = (v: unknown): string[] | null => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

async function readConfig(store: Store, m: ParsedManifest): Promise<ImageConfig | undefined> {
  const c = m.config;
  if (!c || c.size > MAX_CONFIG) return undefined;
  const bytes = await store.driver.readFile(blobDataPath(c.digest), MAX_CONFIG).catch(() => undefined);
  if (!bytes) return undefined;
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof j !== 'object' || j === null) return undefined;
  const cfg = (typeof j.config === 'object' && j.config !== null ? j.config : {}) as Record<string, unknown>;
  const labels: Record<string, string> = {};
  if (typeof cfg.Labels === 'object' && cfg.Labels !== null) for (const [k, v] of Object.entries(cfg.Labels)) if (typeof v === 'string') labels[k] = v;
  return {
    digest: c.digest.toString(), size: c.size,
    created: typeof j.created === 'string' ? j.created : null,
    os: str(j.os), architecture: str(j.architecture), ...(typeof j.variant === 'string' ? { variant: j.variant } : {}),
    entrypoint: strings(cfg.Entrypoint), cmd: strings(cfg.Cmd), env: strings(cfg.Env) ?? [], labels,
    user: str(cfg.User), workingDir: str(cfg.WorkingDir),
  };
}

async function referrers(store: Store, name: string, digest: Digest): Promise<ImageDetail['referrers']> {
  const index = JSON.parse((await referrersIndex(store, name, digest)).toString('utf8')) as { manifests: Array<{ digest: string; mediaType: string; size: number; artifactType?: string; annotations?: Record<string, string> }> };
  const groups = new Map<string, ImageDetail['referrers'][number]['items']>();
  for (const r of index.manifests) {
    const type = r.artifactType ?? 'unknown';
    const items = groups.get(type) ?? [];
    items.push({ digest: r.digest, mediaType: r.mediaType, size: r.size, annotations: r.annotations ?? {} });
    groups.set(type, items);
  }
  return [...groups].sort(([a], [b]) => a.localeCompare(b)).map(([artifactType, items]) => ({ artifactType, items }));
}

export async function imageDetail(store: Store, index: Pick<IndexClient, 'imageFacts'>, accessTimes: AccessTimes, name: string, reference: string): Promise<ImageDetail | undefined> {
  const ref = parseRef(reference);
  const stored = await store.links.getManifest(name, ref).catch(() => undefined);
  if (!stored) return undefined;
  const m = parseManifest(stored.bytes);
  const digest = stored.digest.toString();
  const tags: string[] = [];
  for (const tag of await store.links.tagDirectories(name)) {
    if ((await store.links.resolveTag(name, tag).catch(() => undefined))?.equals(stored.digest)) tags.push(tag);
  }
  tags.sort();
  const facts = await index.imageFacts(name, digest);
  const out: ImageDetail = {
    name, reference, digest, mediaType: stored.mediaType,
    size: facts.size || stored.bytes.byteLength + m.layers.reduce((a, l) => a + l.size, m.config?.size ?? 0),
    kind: m.kind === 'index' ? 'index' : 'manifest', tags,
    pinned: facts.pinned, pulls: accessTimes.of(name)?.get(digest)?.pulls ?? 0, lastPulled: accessTimes.get(name, digest) ?? null,
    referrers: await referrers(store, name, stored.digest),
  };
  if (m.kind === 'index') {
    out.platforms = m.manifests.filter((d) => d.platform).map((d) => ({
      platform: { os: d.platform!.os, architecture: d.platform!.architecture, ...(d.platform!.variant ? { variant: d.platform!.variant } : {}) },
      digest: d.digest.toString(), size: d.size, mediaType: d.mediaType,
    }));
  } else {
    out.layers = m.layers.map((l) => ({ digest: l.digest.toString(), size: l.size, mediaType: l.mediaType }));
    const config = await readConfig(store, m);
    if (config) out.config = config;
  }
  return out;
}
