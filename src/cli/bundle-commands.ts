/**
 * `airlock freeze`, `airlock import` and `airlock verify`: the offline-shipping commands. They
 * work on the configured storage.root directly (no upstream is contacted) and may run beside a
 * serving airlock: every write they make is atomic.
 */
import { access, constants, stat } from 'node:fs/promises';
import path from 'node:path';
import { createStore, prepareStore } from '../app/store.js';
import { loadConfig } from '../config/load.js';
import { parseDuration, type Config } from '../config/schema.js';
import { GarbageCollector } from '../jobs/gc.js';
import { scanStore } from '../jobs/evict.js';
import { AccessTimes } from '../storage/access-times.js';
import { readBundleHeader } from '../jobs/bundle.js';
import { Freezer, type FreezeSelection } from '../jobs/freeze.js';
import { Importer } from '../jobs/import.js';
import { Verifier } from '../jobs/verify.js';
import { createLogger } from '../logging/logger.js';
import { parseImageReference } from '../oci/reference.js';
import { Router, imageTarget } from '../mirror/router.js';
import { UpstreamPolicy, storedNameJudge } from '../mirror/policy.js';
import { formatBytes, formatDuration, formatTable, ProgressLine, rateAndEta } from './format.js';
import { UsageError } from './usage-error.js';

async function open(configFile: string) {
  const config = await loadConfig(configFile);
  const logger = createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level, destination: 2 });
  const store = await createStore(config);
  await prepareStore(config, store.driver);
  return { config, logger, store };
}

export async function freeze(opts: { configFile: string; out?: string; since?: string; images: string[]; version: string }): Promise<number> {
  if (!opts.out) throw new UsageError('freeze needs --out FILE.tar');
  const { config, logger, store } = await open(opts.configFile);
  // The same routing as a pull: `alpine:3.20` is library/alpine, ghcr.io/org/app is stored under its host.
  const router = new Router(new Map(), config.defaultUpstream);
  const images: FreezeSelection[] | undefined = opts.images.length
    ? opts.images.map((label) => {
        let r;
        try {
          r = parseImageReference(label, config.defaultUpstream);
        } catch (e) {
          throw new UsageError(`invalid image reference "${label}": ${(e as Error).message}`);
        }
        const name = router.route(imageTarget(r, config.defaultUpstream)).storeName;
        return { name, label, ref: r.digest ? { kind: 'digest', digest: r.digest } : { kind: 'tag', tag: r.tag ?? 'latest' } };
      })
    : undefined;
  const since = opts.since ? await readBundleHeader(opts.since) : undefined;
  try {
    await access(path.dirname(path.resolve(opts.out)), constants.W_OK);
  } catch (e) {
    throw new UsageError(`cannot write ${opts.out}: ${(e as Error).message}`);
  }
  const progress = new ProgressLine(process.stderr);
  const started = Date.now();
  const r = await new Freezer(store, logger).run({
    out: opts.out,
    images,
    since,
    version: opts.version,
    onProgress: (done, total) => progress.update(`freeze: ${formatBytes(done)} of ${formatBytes(total)}, ${rateAndEta(done, total, started)}`, done === total),
  });
  progress.done();
  for (const w of r.warnings) process.stderr.write(`airlock: warning: ${w}\n`);
  const size = (await stat(r.out)).size;
  process.stdout.write(
    `wrote ${r.out} (${formatBytes(size)}): ${r.images} images, ${r.blobs} blobs (${formatBytes(r.bytes)})` +
      `${since ? `, ${r.skippedBlobs} blobs left to the base bundle` : ''}, ${r.links} links in ${formatDuration(r.ms)} (${formatBytes((r.bytes / Math.max(1, r.ms)) * 1000)}/s)\n` +
      `bundle ${r.id}${since ? ` on top of ${since.id}` : ''}\n`,
  );
  return 0;
}

export async function importBundle(opts: { configFile: string; file?: string; force?: boolean }): Promise<number> {
  if (!opts.file) throw new UsageError('import needs a bundle: airlock import FILE.tar');
  try {
    const s = await stat(opts.file);
    if (!s.isFile()) throw new Error('not a regular file');
  } catch (e) {
    throw new UsageError(`cannot read ${opts.file}: ${(e as Error).message}`);
  }
  const { config, logger, store } = await open(opts.configFile);
  // Imported names become local, beyond the upstreams' allow and deny lists: they judge the
  // bundle's names as a pull of them would be routed.
  const policy = UpstreamPolicy.fromConfig(config);
  const router = new Router(new Map(Object.keys(config.upstreams).map((k) => [k, k])), config.defaultUpstream, config.push.repositories);
  const importPolicy = policy.empty ? undefined : { judge: storedNameJudge(policy, router), mode: policy.mode, force: opts.force === true };
  const progress = new ProgressLine(process.stderr);
  const started = Date.now();
  const r = await new Importer(store, { maxManifestSize: config.http.maxManifestSize, policy: importPolicy, onProgress: (done, total) => progress.update(`import: ${formatBytes(done)} of ${formatBytes(total)}, ${rateAndEta(done, total, started)}`, done === total) }, logger).run(opts.file);
  progress.done();
  const why = opts.force ? '--force' : 'policy.mode report';
  for (const d of r.policyDenials) process.stderr.write(`airlock: warning: imported although denied (${why}): ${d}\n`);
  process.stdout.write(
    `imported bundle ${r.id}${r.base ? ` (on top of ${r.base})` : ''} into ${storeLabel(config)}:\n` +
      `  ${r.blobsAdded} blobs added (${formatBytes(r.bytesAdded)}), ${r.blobsPresent} already present\n` +
      `  ${r.manifests} manifests in ${r.repositories} repositories; tags: ${r.tagsAdded} added, ${r.tagsMoved} moved, ${r.tagsUnchanged} unchanged\n` +
      `  ${formatDuration(r.ms)} (${formatBytes((r.bytesAdded / Math.max(1, r.ms)) * 1000)}/s)\n`,
  );
  return 0;
}

export async function verify(opts: { configFile: string; repair: boolean }): Promise<number> {
  const { config, logger, store } = await open(opts.configFile);
  const progress = new ProgressLine(process.stderr);
  const r = await new Verifier(store, { repair: opts.repair, onProgress: (blobs, bytes) => progress.update(`verify: ${blobs} blobs, ${formatBytes(bytes)} hashed`) }, logger).run();
  progress.done();
  process.stdout.write(`checked ${r.blobs} blobs (${formatBytes(r.bytes)}), ${r.links} links, ${r.manifests} manifests in ${r.repositories} repositories of ${storeLabel(config)} in ${formatDuration(r.ms)}\n`);
  if (r.incomplete.length) process.stdout.write(`${r.incomplete.length} image manifests have blobs that were never pulled (normal for a pull-through cache)\n`);
  if (r.problems.length === 0) {
    process.stdout.write('store is consistent\n');
    return 0;
  }
  process.stdout.write(formatTable(['PROBLEM', 'ITEM', 'DETAIL', 'REPAIRED'], r.problems.map((p) => [p.kind, p.item, p.detail, p.repaired ? 'yes' : 'no'])));
  for (const q of r.quarantined) process.stdout.write(`quarantined: ${q}\n`);
  const left = r.problems.filter((p) => !p.repaired).length;
  if (left === 0) {
    process.stdout.write(`${r.problems.length} problems repaired; the next pull fetches what was removed\n`);
    return 0;
  }
  process.stderr.write(`airlock: ${left} problems found in ${storeLabel(config)}${opts.repair ? '' : ' (run airlock verify --repair to quarantine them)'}\n`);
  return 1;
}

export async function gc(opts: { configFile: string; dryRun: boolean; deleteUntagged: boolean; grace?: string }): Promise<number> {
  let grace = 3_600_000;
  if (opts.grace !== undefined) {
    try {
      grace = parseDuration(opts.grace);
    } catch (e) {
      throw new UsageError(`--grace: ${(e as Error).message}`);
    }
  }
  const { config, logger, store } = await open(opts.configFile);
  const started = Date.now();
  const r = await new GarbageCollector(store, logger).run({
    dryRun: opts.dryRun,
    deleteUntagged: opts.deleteUntagged,
    grace,
    abandonAfter: config.push.abandonAfter,
  });
  const verb = r.dryRun ? 'would delete' : 'deleted';
  for (const m of r.manifestsDeleted) process.stdout.write(`${verb} manifest ${m.name}@${m.digest}\n`);
  for (const w of r.warnings) process.stderr.write(`airlock: warning: ${w}\n`);
  process.stdout.write(
    `gc${r.dryRun ? ' (dry run)' : ''}: ${r.repositories} repositories, ${r.manifests} manifests, ${r.blobs} blobs; ` +
      `${verb} ${r.manifestsDeleted.length} manifests and ${r.blobsDeleted} blobs (${formatBytes(r.bytesFreed)}${r.dryRun ? ' would be freed' : ' freed'}), ` +
      `${r.layerLinksRemoved} layer links, ${r.uploadsRemoved} abandoned uploads${r.unfinishedRemoved ? `, ${r.unfinishedRemoved} unfinished object-store uploads and stale leases` : ''}; ${r.blobsTooYoung} unused blobs kept as younger than ${formatDuration(grace)}; ` +
      `${formatDuration(Date.now() - started)}\n`,
  );
  return 0;
}

/** `airlock du`: per repository, the bytes its images use, how much of that other repositories share, when it was last pulled, and whether it is pinned. */
export async function du(opts: { configFile: string }): Promise<number> {
  const { store } = await open(opts.configFile);
  const access = new AccessTimes(store.driver);
  await access.load();
  const scan = await scanStore(store, access);
  const repos = new Map<string, Set<string>>();
  for (const u of scan.units) {
    const s = repos.get(u.repo) ?? new Set<string>();
    for (const b of u.blobs) s.add(b);
    repos.set(u.repo, s);
  }
  const users = new Map<string, number>();
  for (const s of repos.values()) for (const b of s) users.set(b, (users.get(b) ?? 0) + 1);
  const rows = [...repos].map(([repo, blobs]) => {
    let size = 0;
    let shared = 0;
    for (const b of blobs) {
      const n = scan.sizes.get(b) ?? 0;
      size += n;
      if ((users.get(b) ?? 0) > 1) shared += n;
    }
    const units = scan.units.filter((u) => u.repo === repo);
    const last = Math.max(0, ...units.map((u) => u.lastAccess));
    return { repo, size, shared, images: units.length, last, pinned: units.some((u) => u.pinned) };
  });
  rows.sort((a, b) => b.size - a.size || (a.repo < b.repo ? -1 : 1));
  process.stdout.write(
    formatTable(
      ['repository', 'images', 'size', 'shared', 'last pulled', 'pinned'],
      rows.map((r) => [r.repo, String(r.images), formatBytes(r.size), formatBytes(r.shared), r.last ? new Date(r.last).toISOString().replace(/\.\d+Z$/, 'Z') : '-', r.pinned ? 'yes' : 'no']),
    ),
  );
  process.stdout.write(`store: ${formatBytes(scan.totalBytes)} in ${scan.sizes.size} blobs, ${scan.units.length} images in ${rows.length} repositories\n`);
  return 0;
}

/** Where the store is, as messages name it: its root directory, or s3://bucket/prefix. */
function storeLabel(config: Config): string {
  const s3 = config.storage.s3;
  if (config.storage.driver === 's3' && s3) return `s3://${s3.bucket}${s3.prefix ? `/${s3.prefix}` : ''}`;
  return config.storage.root;
}
