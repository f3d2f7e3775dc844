import { configOption, defineCommand, noArguments } from '../command.js';
import { formatBytes, formatDuration } from '../format.js';
import { UsageError } from '../usage-error.js';

/** `airlock gc`: deletes blobs no manifest uses; safe beside a serving airlock. */
export const gc = defineCommand({
  name: 'gc',
  summary: 'delete blobs no manifest uses (safe beside serve)',
  usage: '[--dry-run] [--delete-untagged] [--grace 1h] [--config FILE]',
  options: {
    config: configOption,
    'dry-run': { type: 'boolean', help: 'print what would be deleted, delete nothing' },
    'delete-untagged': { type: 'boolean', help: 'also delete manifests no tag, pin, index or subject needs' },
    grace: { type: 'string', value: 'DURATION', help: 'keep anything younger than this (default 1h)' },
  },
  async run(values, positionals) {
    noArguments('gc', positionals);
    return run({ configFile: values.config, dryRun: values['dry-run'] === true, deleteUntagged: values['delete-untagged'] === true, grace: values.grace });
  },
});

async function run(opts: { configFile: string; dryRun: boolean; deleteUntagged: boolean; grace?: string }): Promise<number> {
  const [{ parseDuration }, { openOfflineJobs }] = await Promise.all([import('../../config/schema.js'), import('../../app/offline-jobs.js')]);
  let grace = 3_600_000;
  if (opts.grace !== undefined) {
    try {
      grace = parseDuration(opts.grace);
    } catch (e) {
      throw new UsageError(`--grace: ${(e as Error).message}`);
    }
  }
  const jobs = await openOfflineJobs(opts.configFile);
  const { config, audit } = jobs;
  const started = Date.now();
  const r = await jobs.collector().run({
    dryRun: opts.dryRun,
    deleteUntagged: opts.deleteUntagged,
    grace,
    abandonAfter: config.push.abandonAfter,
    onRemoved: audit ? (x) => audit.record({ audit: 'remove', by: 'gc', kind: x.kind, ...(x.name !== undefined ? { stored: x.name } : {}), digest: x.digest, ...(x.bytes !== undefined ? { bytes: x.bytes } : {}) }) : undefined,
  });
  await jobs.close();
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
