import { stat } from 'node:fs/promises';
import path from 'node:path';
import { configOption, defineCommand } from '../command.js';
import { formatBytes, formatDuration, ProgressLine, rateAndEta } from '../format.js';
import { UsageError } from '../usage-error.js';

/** `airlock load FILE…`: images from `docker save` / OCI archives into local names, all or nothing. */
export const load = defineCommand({
  name: 'load',
  summary: 'add images from docker save / OCI archives to the store',
  usage: '[--name NAME[:TAG]] [--force] [--config FILE] FILE...',
  options: {
    config: configOption,
    name: { type: 'string', value: 'NAME[:TAG]', help: "store the image under this name (without a tag: with the archive's tags)" },
    force: { type: 'boolean', help: "load images the upstreams' allow and deny lists deny" },
  },
  run: (values, positionals) => run({ configFile: values.config, files: positionals, name: values.name, force: values.force === true }),
});

async function run(opts: { configFile: string; files: string[]; name?: string; force: boolean }): Promise<number> {
  if (opts.files.length === 0) throw new UsageError('load needs an archive: airlock load FILE.tar (docker save, oci-archive, or an OCI layout directory)');
  if (opts.name !== undefined && opts.files.length > 1 && opts.name.lastIndexOf(':') > opts.name.lastIndexOf('/')) throw new UsageError(`--name ${opts.name} names one image; load one archive with it`);
  for (const f of opts.files) {
    try {
      const s = await stat(f);
      if (!s.isFile() && !s.isDirectory()) throw new Error('not a regular file or directory');
    } catch (e) {
      throw new UsageError(`cannot read ${f}: ${(e as Error).message}`);
    }
  }
  const [{ openOfflineJobs }, { describeStore }] = await Promise.all([import('../../app/offline-jobs.js'), import('../../app/store.js')]);
  const jobs = await openOfflineJobs(opts.configFile);
  const { config, audit } = jobs;
  const progress = new ProgressLine(process.stderr);
  const started = Date.now();
  const r = await jobs.loader({ force: opts.force, onProgress: (done, total) => progress.update(`load: ${formatBytes(done)} of ${formatBytes(total)}, ${rateAndEta(done, total, started)}`, done === total) }).run(opts.files, opts.name);
  progress.done();
  await audit?.record({ audit: 'load', archives: opts.files.map((f) => path.resolve(f)), images: r.images.map((i) => `${i.name}:${i.tag}`), forced: r.policyDenials });
  await jobs.close();
  const why = opts.force ? '--force' : 'policy.mode report';
  for (const d of r.policyDenials) process.stderr.write(`airlock: warning: loaded although denied (${why}): ${d}\n`);
  const names = r.images.map((i) => `${i.name}:${i.tag}`);
  process.stdout.write(
    `loaded ${names.length} image${names.length === 1 ? '' : 's'} into ${describeStore(config).label}: ${names.slice(0, 5).join(', ')}${names.length > 5 ? `, and ${names.length - 5} more` : ''}; ` +
      `${r.blobsAdded} blobs added (${formatBytes(r.bytesAdded)}), ${r.blobsPresent} already present; tags: ${r.tagsAdded} added, ${r.tagsMoved} moved, ${r.tagsUnchanged} unchanged; ${formatDuration(r.ms)}\n`,
  );
  return 0;
}
