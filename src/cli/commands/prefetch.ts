import { configOption, defineCommand } from '../command.js';
import { formatBytes, formatDuration, formatTable, ProgressLine, rateAndEta } from '../format.js';
import { UsageError } from '../usage-error.js';

/**
 * `airlock prefetch [IMAGE…]`: warms the configured list (or the images named) once, with live
 * progress on a terminal, a summary table at the end, and exit 1 when any image failed.
 */
export const prefetch = defineCommand({
  name: 'prefetch',
  summary: 'warm the prefetch list (or the images named)',
  usage: '[--config FILE] [IMAGE...]',
  options: { config: configOption },
  run: (values, positionals) => run(values.config, positionals),
});

async function run(configFile: string, named: string[]): Promise<number> {
  const [{ createAirlock }, { loadConfig }, { createLogger }, { parseImageReference }] = await Promise.all([
    import('../../app/compose.js'),
    import('../../config/load.js'),
    import('../../logging/logger.js'),
    import('../../oci/reference.js'),
  ]);
  const config = await loadConfig(configFile);
  for (const i of named) {
    try {
      parseImageReference(i, config.defaultUpstream);
    } catch (e) {
      throw new UsageError(`invalid image reference "${i}": ${(e as Error).message}`);
    }
  }
  const images = named.length ? named : undefined;
  if (!images && config.prefetch.images.length === 0) throw new UsageError(`nothing to prefetch: name images, or list them under prefetch.images in ${configFile}`);
  // Job logs go to stderr at warn and above; the table is the output.
  const logger = createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level, destination: 2 });
  const airlock = await createAirlock(config, logger);
  const progress = new ProgressLine(process.stderr);
  try {
    const report = await airlock.prefetch(images, (p) =>
      progress.update(`prefetch: ${p.imagesDone}/${p.imagesTotal} images, ${formatBytes(p.bytes)} of ${formatBytes(p.bytesPlanned)} fetched, ${rateAndEta(p.bytes, p.bytesPlanned, p.startedAt)}`, p.imagesDone === p.imagesTotal),
    );
    progress.done();
    const rows = report.results.map((r) => [r.image, r.digest ? r.digest.slice(0, 19) : '-', r.platforms.join(',') || '-', String(r.newBlobs), formatBytes(r.bytes), formatDuration(r.ms), r.outcome === 'ok' ? 'ok' : `FAILED: ${r.error ?? ''}`]);
    process.stdout.write(formatTable(['IMAGE', 'DIGEST', 'PLATFORMS', 'NEW BLOBS', 'BYTES', 'TIME', 'OUTCOME'], rows));
    const failed = report.results.filter((r) => r.outcome === 'failed');
    const total = report.results.reduce((a, r) => a + r.bytes, 0);
    process.stdout.write(`${report.results.length - failed.length} of ${report.results.length} images ok, ${formatBytes(total)} fetched in ${formatDuration(report.ms)}\n`);
    for (const f of failed) process.stderr.write(`airlock: prefetch of ${f.image} failed: ${f.error ?? 'unknown error'}\n`);
    return failed.length ? 1 : 0;
  } finally {
    await airlock.close();
  }
}
