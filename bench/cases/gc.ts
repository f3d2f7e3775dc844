/**
 * gc over a store of GC_BLOBS blobs, half of them used by 100 repositories' manifests: `airlock gc`
 * against Distribution's `registry garbage-collect`, each on its own copy of the same layout.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DISTRIBUTION_BIN } from '../../test/helpers/distribution.js';
import { entryFor } from '../lib/baseline.js';
import { both } from '../lib/compare.js';
import { baselineRef, smoke } from '../lib/options.js';
import { airlockCli, settle, sh, timed } from '../lib/shell.js';
import { nextId, workPath } from '../lib/work-dir.js';

export async function gcCase(): Promise<void> {
  const GC_BLOBS = smoke ? 400 : 10_000;
  const template = await mkdtemp(workPath('gc-template-'));
  const v2 = path.join(template, 'docker/registry/v2');
  const digests: string[] = [];
  for (let i = 0; i < GC_BLOBS; i++) {
    const data = randomBytes(64 + (i % 512));
    const hex = createHash('sha256').update(data).digest('hex');
    await mkdir(path.join(v2, 'blobs/sha256', hex.slice(0, 2), hex), { recursive: true });
    await writeFile(path.join(v2, 'blobs/sha256', hex.slice(0, 2), hex, 'data'), data);
    digests.push(`sha256:${hex}`);
  }
  const repos = 100;
  const used = digests.slice(0, GC_BLOBS / 2);
  const perRepo = Math.floor(used.length / repos);
  const link = async (p: string, d: string) => {
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, d);
  };
  for (let r = 0; r < repos; r++) {
    const mine = used.slice(r * perRepo, (r + 1) * perRepo);
    const [config, ...layers] = mine;
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 1 },
      layers: layers.map((d) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d, size: 1 })),
    }));
    const hex = createHash('sha256').update(manifest).digest('hex');
    await mkdir(path.join(v2, 'blobs/sha256', hex.slice(0, 2), hex), { recursive: true });
    await writeFile(path.join(v2, 'blobs/sha256', hex.slice(0, 2), hex, 'data'), manifest);
    const repo = path.join(v2, 'repositories', `gc/r${r}`);
    await link(path.join(repo, '_manifests/revisions/sha256', hex, 'link'), `sha256:${hex}`);
    await link(path.join(repo, '_manifests/tags/v1/current/link'), `sha256:${hex}`);
    await link(path.join(repo, '_manifests/tags/v1/index/sha256', hex, 'link'), `sha256:${hex}`);
    for (const d of mine) await link(path.join(repo, '_layers/sha256', d.slice(7), 'link'), d);
  }
  await both(`gc, ${GC_BLOBS} blobs (half unused), 100 repositories`, 's', 'lower', '≤ 1.0', async (who) => {
    const root = await mkdtemp(workPath(`gc-${who}-`));
    await sh('cp', ['-a', `${template}/.`, root]);
    await settle();
    try {
      // With --baseline, the baseline's `airlock gc` in Distribution's place.
      if (who === 'airlock' || baselineRef) {
        const cfg = workPath(`gc-${nextId()}.yml`);
        await writeFile(cfg, `storage:\n  root: ${root}\nlog:\n  level: warn\n`);
        return await timed(() => airlockCli(entryFor(who), ['gc', '--config', cfg, '--grace', '0s']));
      }
      const cfg = workPath(`gc-dist-${nextId()}.yml`);
      await writeFile(cfg, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n`);
      return await timed(() => sh(DISTRIBUTION_BIN, ['garbage-collect', cfg], { maxBuffer: 256 << 20 }));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
  await rm(template, { recursive: true, force: true });
}
