import { configOption, defineCommand, noArguments } from '../command.js';
import { formatBytes, formatDuration, formatTable, ProgressLine } from '../format.js';

/** `airlock verify`: re-hashes every blob and checks every link; exit 1 while problems remain. */
export const verify = defineCommand({
  name: 'verify',
  summary: 're-hash every blob, check every link',
  usage: '[--repair] [--config FILE]',
  options: {
    config: configOption,
    repair: { type: 'boolean', help: 'quarantine corrupt blobs and remove the links that need them' },
  },
  async run(values, positionals) {
    noArguments('verify', positionals);
    return run(values.config, values.repair === true);
  },
});

async function run(configFile: string, repair: boolean): Promise<number> {
  const [{ openOfflineJobs }, { describeStore }] = await Promise.all([import('../../app/offline-jobs.js'), import('../../app/store.js')]);
  const jobs = await openOfflineJobs(configFile);
  const { config } = jobs;
  const progress = new ProgressLine(process.stderr);
  const r = await jobs.verifier({ repair, onProgress: (blobs, bytes) => progress.update(`verify: ${blobs} blobs, ${formatBytes(bytes)} hashed`) }).run();
  await jobs.close();
  progress.done();
  process.stdout.write(`checked ${r.blobs} blobs (${formatBytes(r.bytes)}), ${r.links} links, ${r.manifests} manifests in ${r.repositories} repositories of ${describeStore(config).label} in ${formatDuration(r.ms)}\n`);
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
  process.stderr.write(`airlock: ${left} problems found in ${describeStore(config).label}${repair ? '' : ' (run airlock verify --repair to quarantine them)'}\n`);
  return 1;
}
