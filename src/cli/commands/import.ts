import { stat } from 'node:fs/promises';
import path from 'node:path';
import { configOption, defineCommand } from '../command.js';
import { formatBytes, formatDuration, ProgressLine, rateAndEta } from '../format.js';
import { BundleError } from '../../jobs/bundle-error.js';
import { VolumeReader, volumeBase } from '../../jobs/bundle-volumes.js';
import { UsageError } from '../usage-error.js';

/** `airlock import FILE.tar`: verifies a bundle and adds it to the store, all or nothing. */
export const importBundle = defineCommand({
  name: 'import',
  summary: 'verify a bundle and add it to the store',
  usage: '[--force] [--trust KEY.pub] [--config FILE] FILE.tar | FILE.tar.000',
  options: {
    config: configOption,
    force: { type: 'boolean', help: "import images the upstreams' allow and deny lists deny" },
    trust: { type: 'string', value: 'KEY.pub', help: 'import only a bundle this key signed (besides import.trust)' },
  },
  async run(values, positionals) {
    if (positionals.length > 1) throw new UsageError(`import takes one bundle, got ${positionals.length}`);
    return run({ configFile: values.config, file: positionals[0], force: values.force === true, trust: values.trust });
  },
});

async function run(opts: { configFile: string; file?: string; force: boolean; trust?: string }): Promise<number> {
  if (!opts.file) throw new UsageError('import needs a bundle: airlock import FILE.tar');
  try {
    const s = await stat(opts.file);
    if (!s.isFile()) throw new Error('not a regular file');
  } catch (e) {
    throw new UsageError(`cannot read ${opts.file}: ${(e as Error).message}`);
  }
  const [{ openOfflineJobs }, { describeStore }] = await Promise.all([import('../../app/offline-jobs.js'), import('../../app/store.js')]);
  const jobs = await openOfflineJobs(opts.configFile);
  const { config, audit } = jobs;
  const progress = new ProgressLine(process.stderr);
  const started = Date.now();
  const importer = await jobs.importer({ force: opts.force, trust: opts.trust === undefined ? [] : [opts.trust], onProgress: (done, total) => progress.update(`import: ${formatBytes(done)} of ${formatBytes(total)}, ${rateAndEta(done, total, started)}`, done === total) });
  // The first of a set of volumes (freeze --volume-size): read in order, each checked as it ends.
  const volumes = volumeBase(opts.file) === undefined ? undefined : await VolumeReader.open(opts.file);
  let r;
  try {
    r = await importer.run(opts.file, volumes?.stream());
  } catch (e) {
    if (volumes?.current && e instanceof BundleError && !/^volume /.test(e.message)) {
      const burnt = await volumes.corruptCurrent();
      if (burnt) throw burnt;
      const where = volumes.absent ? `after the last volume found, ${path.basename(volumes.current)}: is ${path.basename(volumes.absent)} missing?` : `reading volume ${path.basename(volumes.current)}`;
      throw new BundleError(`${e.message} (${where})`, { cause: e });
    }
    throw e;
  }
  progress.done();
  await audit?.record({ audit: 'import', bundle: path.resolve(opts.file), sums: r.sums, images: r.imageNames, forced: r.policyDenials, ...(r.signer ? { signer: r.signer } : {}) });
  await jobs.close();
  const why = opts.force ? '--force' : 'policy.mode report';
  for (const d of r.policyDenials) process.stderr.write(`airlock: warning: imported although denied (${why}): ${d}\n`);
  process.stdout.write(
    `imported bundle ${r.id}${r.base ? ` (on top of ${r.base})` : ''} into ${describeStore(config).label}:\n` +
      (r.signer ? `  signed by trusted key ${r.signer}\n` : '') +
      `  ${r.blobsAdded} blobs added (${formatBytes(r.bytesAdded)}), ${r.blobsPresent} already present\n` +
      `  ${r.manifests} manifests in ${r.repositories} repositories; tags: ${r.tagsAdded} added, ${r.tagsMoved} moved, ${r.tagsUnchanged} unchanged\n` +
      `  ${formatDuration(r.ms)} (${formatBytes((r.bytesAdded / Math.max(1, r.ms)) * 1000)}/s)\n`,
  );
  return 0;
}
