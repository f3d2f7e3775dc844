import { access, constants, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FreezeSelection } from '../../jobs/freeze.js';
import { configOption, defineCommand } from '../command.js';
import { formatBytes, formatDuration, ProgressLine, rateAndEta } from '../format.js';
import { parseSize } from '../../config/units.js';
import { MIN_VOLUME_SIZE, volumeSumsName } from '../../jobs/bundle-volumes.js';
import { UsageError } from '../usage-error.js';
import { airlockVersion } from '../../runtime/version.js';

/** `airlock freeze`: the store (or the images named) as one bundle, for shipping offline. */
export const freeze = defineCommand({
  name: 'freeze',
  summary: 'write the store (or the images) as a bundle',
  usage: '--out FILE.tar [--since EARLIER.tar | --have SITE.inv [--trust KEY.pub]] [--sign KEY] [--volume-size SIZE] [--with-airlock [--kit FILE]] [--config FILE] [IMAGE...]',
  options: {
    config: configOption,
    out: { type: 'string', short: 'o', value: 'FILE', help: 'the bundle to write (atomically)' },
    since: { type: 'string', value: 'FILE', help: 'leave out what an earlier bundle (and its chain) holds' },
    have: { type: 'string', value: 'SITE.inv', help: "only what a site lacks, by its inventory (airlock inventory); without images, the prefetch list's" },
    trust: { type: 'string', value: 'KEY.pub', help: 'accept only an inventory this key signed (besides import.trust)' },
    sign: { type: 'string', value: 'KEY', help: 'sign the bundle with this private key (airlock keygen)' },
    'with-airlock': { type: 'boolean', help: "carry airlock's release kit (npm run release) in the bundle, under airlock-kit/" },
    kit: { type: 'string', value: 'FILE', help: 'the release kit to carry (default: release/ of this airlock); implies --with-airlock' },
    'volume-size': { type: 'string', value: 'SIZE', help: 'cut it into volumes FILE.000, FILE.001, … of SIZE (4.4GiB: a DVD) for removable media' },
  },
  run: (values, positionals) => run({ configFile: values.config, out: values.out, since: values.since, have: values.have, trust: values.trust, sign: values.sign, volumeSize: values['volume-size'], kit: values.kit ?? (values['with-airlock'] === true ? '' : undefined), images: positionals }),
});

function volumeBytes(text: string): number {
  let n: number;
  try {
    n = parseSize(text);
  } catch (e) {
    throw new UsageError(`freeze --volume-size: ${(e as Error).message}`);
  }
  if (n < MIN_VOLUME_SIZE) throw new UsageError(`freeze --volume-size: at least ${formatBytes(MIN_VOLUME_SIZE)}`);
  return n;
}

/** The kit to carry: the file given, or the one `npm run release` wrote for this version. */
async function releaseKit(given: string): Promise<{ path: string; name: string; size: number }> {
  const { RELEASE_DIR, parseReleaseKitName, releaseKitName } = await import('../../runtime/release-kit.js');
  const file = given || fileURLToPath(new URL(`../../../${RELEASE_DIR}/${releaseKitName(airlockVersion())}`, import.meta.url));
  if (!parseReleaseKitName(path.basename(file))) throw new UsageError(`${file} is not named like an airlock release kit (airlock-VERSION-linux-ARCH.tar.gz)`);
  let size: number;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new Error('not a regular file');
    size = s.size;
  } catch (e) {
    const hint = given ? '' : ' (run npm run release first, or give --kit FILE)';
    throw new UsageError(`cannot read the release kit ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}${hint}`);
  }
  return { path: path.resolve(file), name: path.basename(file), size };
}

async function run(opts: { configFile: string; out?: string; since?: string; have?: string; trust?: string; sign?: string; volumeSize?: string; kit?: string; images: string[] }): Promise<number> {
  if (!opts.out) throw new UsageError('freeze needs --out FILE.tar');
  if (opts.since !== undefined && opts.have !== undefined) throw new UsageError('freeze takes --since or --have, not both');
  const volumeSize = opts.volumeSize === undefined ? undefined : volumeBytes(opts.volumeSize);
  const kit = opts.kit === undefined ? undefined : await releaseKit(opts.kit);
  if (opts.trust !== undefined && opts.have === undefined) throw new UsageError('freeze --trust checks an inventory: give --have SITE.inv too');
  const [{ openOfflineJobs }, { readBundleHeader }, { parseImageReference }, { readSigningKey, TrustedKeys }, { readInventory }, { prefetchSelection }] = await Promise.all([
    import('../../app/offline-jobs.js'),
    import('../../jobs/bundle.js'),
    import('../../oci/reference.js'),
    import('../../jobs/signature.js'),
    import('../../jobs/inventory.js'),
    import('../../jobs/freeze-selection.js'),
  ]);
  // Read first: a wrong key file fails before minutes of freezing.
  const sign = opts.sign === undefined ? undefined : await readSigningKey(opts.sign);
  const jobs = await openOfflineJobs(opts.configFile);
  const { config, audit } = jobs;
  const have = opts.have === undefined ? undefined : await readInventory(opts.have, await TrustedKeys.read([...config.import.trust, ...(opts.trust === undefined ? [] : [opts.trust])]));
  let images: FreezeSelection[] | undefined = opts.images.length
    ? opts.images.map((label) => {
        let r;
        try {
          r = parseImageReference(label, config.defaultUpstream);
        } catch (e) {
          throw new UsageError(`invalid image reference "${label}": ${(e as Error).message}`);
        }
        // The same routing as a pull: `alpine:3.20` is library/alpine, ghcr.io/org/app is stored under its host.
        const name = jobs.storeName(r);
        return { name, label, ref: r.digest ? { kind: 'digest', digest: r.digest } : { kind: 'tag', tag: r.tag ?? 'latest' } };
      })
    : undefined;
  // A site's inventory with no images named: what it lacks of the prefetch list, as the store holds it.
  if (have && !images && config.prefetch.images.length > 0) images = await prefetchSelection(jobs.store, config.prefetch.images, (r) => jobs.storeName(parseImageReference(r, config.defaultUpstream)), config.defaultUpstream);
  const since = opts.since ? await readBundleHeader(opts.since) : undefined;
  try {
    await access(path.dirname(path.resolve(opts.out)), constants.W_OK);
  } catch (e) {
    throw new UsageError(`cannot write ${opts.out}: ${(e as Error).message}`);
  }
  const progress = new ProgressLine(process.stderr);
  const started = Date.now();
  const r = await jobs.freezer().run({
    out: opts.out,
    images,
    since,
    have,
    version: airlockVersion(),
    sign,
    volumeSize,
    kit,
    onProgress: (done, total) => progress.update(`freeze: ${formatBytes(done)} of ${formatBytes(total)}, ${rateAndEta(done, total, started)}`, done === total),
  });
  progress.done();
  await audit?.record({ audit: 'freeze', bundle: path.resolve(r.out), sums: r.sums, images: r.imageNames, ...(since ? { since: since.id } : {}), ...(have ? { inventory: have.id } : {}), ...(r.signer ? { signer: r.signer } : {}) });
  await jobs.close();
  for (const w of r.warnings) process.stderr.write(`airlock: warning: ${w}\n`);
  const files = r.volumes ?? [r.out];
  const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
  const size = sizes.reduce((a, b) => a + b, 0);
  const what = r.volumes ? `${files.length} volumes ${path.basename(files[0] as string)} … ${path.basename(files.at(-1) as string)} and ${path.basename(volumeSumsName(r.out))}` : r.out;
  process.stdout.write(
    `wrote ${what} (${formatBytes(size)}): ${r.images} images, ${r.blobs} blobs (${formatBytes(r.bytes)})` +
      `${since ? `, ${r.skippedBlobs} blobs left to the base bundle` : ''}${have ? `, ${r.skippedBlobs} blobs the site holds left out` : ''}, ${r.links} links in ${formatDuration(r.ms)} (${formatBytes((r.bytes / Math.max(1, r.ms)) * 1000)}/s)\n` +
      (kit ? `carries ${kit.name} (${formatBytes(kit.size)}) under airlock-kit/\n` : '') +
      `bundle ${r.id}${since ? ` on top of ${since.id}` : ''}${r.signer ? `, signed by ${r.signer}` : ''}\n`,
  );
  return 0;
}
