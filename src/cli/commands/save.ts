import { access, constants, stat } from 'node:fs/promises';
import path from 'node:path';
import type { SaveSelection } from '../../jobs/archive-save.js';
import { configOption, defineCommand } from '../command.js';
import { formatBytes, formatDuration, ProgressLine, rateAndEta } from '../format.js';
import { UsageError } from '../usage-error.js';

/** `airlock save IMAGE… --out FILE`: images as one archive for docker load, podman load, ctr import. */
export const save = defineCommand({
  name: 'save',
  summary: 'write images as a docker load / OCI archive',
  usage: '--out FILE.tar [--format docker|oci] [--platform OS/ARCH] [--config FILE] IMAGE...',
  options: {
    config: configOption,
    out: { type: 'string', short: 'o', value: 'FILE', help: 'the archive to write (atomically)' },
    format: { type: 'string', default: 'docker', value: 'docker|oci', help: 'docker-archive (docker load, podman load) or OCI layout (ctr import, skopeo oci-archive:)' },
    platform: { type: 'string', value: 'OS/ARCH', help: 'the child of a multi-arch image to save (docker format default: linux/amd64)' },
  },
  run: (values, positionals) => run({ configFile: values.config, out: values.out, format: values.format, platform: values.platform, images: positionals }),
});

async function run(opts: { configFile: string; out?: string; format: string; platform?: string; images: string[] }): Promise<number> {
  if (!opts.out) throw new UsageError('save needs --out FILE.tar');
  if (opts.images.length === 0) throw new UsageError('save needs at least one image: airlock save --out FILE.tar IMAGE...');
  if (opts.format !== 'docker' && opts.format !== 'oci') throw new UsageError(`--format must be docker or oci, not ${opts.format}`);
  const format = opts.format;
  const [{ openOfflineJobs }, { parseImageReference, formatImageReference }, { parsePlatform }] = await Promise.all([
    import('../../app/offline-jobs.js'),
    import('../../oci/reference.js'),
    import('../../oci/manifest.js'),
  ]);
  let platform;
  try {
    platform = opts.platform === undefined ? undefined : parsePlatform(opts.platform);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  try {
    await access(path.dirname(path.resolve(opts.out)), constants.W_OK);
  } catch (e) {
    throw new UsageError(`cannot write ${opts.out}: ${(e as Error).message}`);
  }
  const jobs = await openOfflineJobs(opts.configFile);
  const images: SaveSelection[] = opts.images.map((label) => {
    let r;
    try {
      r = parseImageReference(label, jobs.config.defaultUpstream);
    } catch (e) {
      throw new UsageError(`invalid image reference "${label}": ${(e as Error).message}`);
    }
    // The same routing as a pull: `alpine:3` is library/alpine.
    const name = jobs.storeName(r);
    const ref = r.digest ? { kind: 'digest' as const, digest: r.digest } : { kind: 'tag' as const, tag: r.tag ?? 'latest' };
    return { name, label, ref, reference: formatImageReference(r.digest ? { ...r, tag: undefined } : r) };
  });
  const progress = new ProgressLine(process.stderr);
  const started = Date.now();
  const r = await jobs.saver().run({
    out: opts.out,
    format,
    platform,
    images,
    onProgress: (done, total) => progress.update(`save: ${formatBytes(done)} of ${formatBytes(total)}, ${rateAndEta(done, total, started)}`, done === total),
  });
  progress.done();
  await jobs.close();
  for (const w of r.warnings) process.stderr.write(`airlock: warning: ${w}\n`);
  const size = (await stat(r.out)).size;
  process.stdout.write(`wrote ${r.out} (${formatBytes(size)}, ${format} format): ${r.images.map((i) => `${i.reference} ${i.digest}`).join(', ')}; ${r.blobs} blobs (${formatBytes(r.bytes)}) in ${formatDuration(r.ms)}\n`);
  return 0;
}
