/**
 * `npm run bench`: airlock and CNCF Distribution side by side, in one run, on 127.0.0.1 only.
 *
 * Everything runs against the same upstream: Distribution with token auth behind a byte-counting
 * proxy (test/helpers/upstream.ts). The peer is Distribution in proxy mode (`proxy: remoteurl`)
 * for the pull-through cases, and Distribution serving the same directory for the plain-registry
 * cases. The offline-shipping cases name another peer: `skopeo sync` of the same image list for
 * `airlock prefetch`, and tar plus sha256sum over the same bytes for `freeze` and `import`.
 * The fleet case runs three replicas of each on one S3 bucket (Ceph's radosgw, started only when
 * that case is selected): airlock `serve` processes sharing fill leases against Distribution's
 * proxy mode with its s3 driver; both stream blobs through the replica (Distribution's default
 * redirect to the bucket is turned off), and again with both redirecting.
 * Each case runs ≥3 times (cold stores for cold cases), alternating who goes first, and
 * reports min/median/max and airlock ÷ Distribution of the medians. It asserts nothing.
 *
 *   npm run bench              full run (≈15–20 min on 2 cores)
 *   npm run bench -- --quick   small sizes and short loads (≈2 min)
 *   npm run bench -- --smoke   tiny sizes, one repetition: only checks that the script runs (tests)
 *   npm run bench -- --case TEXT   only the cases whose name contains TEXT; writes
 *                                  bench/results/case.{json,md} (not committed) instead
 *   npm run bench -- --baseline REF   airlock built at git ref REF in the peer's place, in every
 *                                     case; writes bench/results/baseline.{json,md} instead
 *
 * This file sets up the upstream and the images, runs the cases (bench/cases/, one file each) in
 * order and writes bench/results/latest.{json,md}; bench/lib/ holds what the cases share.
 * What the measurements decided in the code: bench/PERFORMANCE.md.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { generateImage, generateIndex } from '../test/helpers/images.js';
import { startTestUpstream, type TestUpstream } from '../test/helpers/upstream.js';
import { archiveCases } from './cases/archives.js';
import { coldPullSmallCase } from './cases/cold-pull-small.js';
import { coldPullUplinkCase } from './cases/cold-pull-uplink.js';
import { coldPullCase } from './cases/cold-pull.js';
import { consoleCase } from './cases/console.js';
import { concurrentColdPullsCase } from './cases/concurrent-cold-pulls.js';
import { fleetCase } from './cases/fleet.js';
import { freezeCase } from './cases/freeze.js';
import { gcCase } from './cases/gc.js';
import { importCase } from './cases/import.js';
import { importVolumesCase } from './cases/import-volumes.js';
import { plainRegistryCases } from './cases/plain-registry.js';
import { prefetchCase } from './cases/prefetch.js';
import { pushCases } from './cases/push.js';
import { warmBlobGetCase } from './cases/warm-blob-get.js';
import { warmManifestCases } from './cases/warm-manifests.js';
import { warmPullCases } from './cases/warm-pull.js';
import { prepareBaseline, type BaselineBuild } from './lib/baseline.js';
import { writeBaselineReport } from './lib/baseline-report.js';
import { layerBytes } from './lib/layer-bytes.js';
import { S, baselineRef, quick } from './lib/options.js';
import { writeReport } from './lib/report.js';
import { startWarmMirrors } from './lib/warm-mirrors.js';
import { makeWorkDir } from './lib/work-dir.js';

async function main(): Promise<void> {
  const work = await makeWorkDir();
  let up: TestUpstream | undefined;
  let base: BaselineBuild | undefined;
  try {
    // Built first: a ref that does not build ends the run before anything is measured.
    if (baselineRef) base = await prepareBaseline(baselineRef);
    console.error(`bench: ${quick ? 'quick' : 'full'} run${base ? ` against the baseline ${base.ref}` : ''}; generating images…`);
    up = await startTestUpstream();
    const big = await generateImage(path.join(work, 'g-big'), { layers: 1, layerSize: S.big, format: 'oci' });
    const conc = await generateImage(path.join(work, 'g-conc'), { layers: 4, layerSize: S.concurrentImage / 4, format: 'oci' });
    const small = await generateImage(path.join(work, 'g-small'), { layers: S.small, layerSize: S.smallSize, format: 'docker' });
    const multi = await generateIndex(path.join(work, 'g-multi'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 2, layerSize: 256 * 1024, format: 'oci' });
    await up.push(big, 'bench/big', 'v1');
    await up.push(conc, 'bench/conc', 'v1');
    await up.push(small, 'bench/small', 'v1');
    await up.push(multi, 'bench/multi', 'v1');
    await rm(path.join(work, 'g-big'), { recursive: true, force: true });
    const bigLayer = big.blobs[1]!;

    // ---- pull-through: airlock vs Distribution's proxy mode, same upstream ------------------
    await coldPullCase(up, big);
    await coldPullUplinkCase(up, big);

    // Warm: one mirror each, warmed once, then pulled S.reps times.
    const warm = await startWarmMirrors(up, ['bench/big:v1', 'bench/small:v1', 'bench/multi:v1']);
    try {
      await warmPullCases(warm);
      await coldPullSmallCase(up);
      await warmBlobGetCase(warm, bigLayer);
      await warmManifestCases(warm, multi.manifestDigest);
    } finally {
      for (const m of Object.values(warm)) await m.stop();
    }

    await concurrentColdPullsCase(up, conc);

    // Three replicas on one bucket (radosgw), two clients each: cold and warm rounds, upstream bytes.
    await fleetCase(up, 'bench/conc:v1', layerBytes(conc));
    await fleetCase(up, 'bench/conc:v1', layerBytes(conc), true);

    // ---- plain registry: both serve the same directory (the store airlock wrote) ----------
    await plainRegistryCases(up, bigLayer, multi.manifestDigest);

    // ---- push and gc ---------------------------------------------------------------------------
    // The big layer's bytes, from the upstream's own store (the generated layout is gone by now).
    await pushCases(path.join(up.dir, 'root/docker/registry/v2/blobs/sha256', bigLayer.digest.slice(7, 9), bigLayer.digest.slice(7), 'data'), bigLayer.digest, bigLayer.size);
    await gcCase();

    // ---- the web console: its API on 10,000 repositories, and what it costs the pull path -------
    await consoleCase(up);

    // ---- offline shipping ----------------------------------------------------------------------
    const offlineImages = [{ repo: 'bench/big', tag: 'v1' }, { repo: 'bench/conc', tag: 'v1' }, { repo: 'bench/small', tag: 'v1' }, { repo: 'bench/multi', tag: 'v1' }];
    const offlineBytes = layerBytes(big) + layerBytes(conc) + layerBytes(small) + layerBytes(multi);
    const kept = await prefetchCase(up, offlineImages, offlineBytes);
    if (kept) {
      await freezeCase(kept, offlineBytes);
      await importCase(kept, offlineBytes);
      await importVolumesCase(kept, offlineBytes);
      await archiveCases(kept, 'bench/big:v1', layerBytes(big));
      await rm(kept.root, { recursive: true, force: true });
    }

    if (base) await writeBaselineReport(base);
    else await writeReport();
  } finally {
    await base?.remove();
    await up?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
