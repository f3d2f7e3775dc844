/**
 * The reliability suite: faults injected between airlock and a real upstream, kill -9 during
 * fills and pushes, a full disk, a corpus of malformed requests, and sustained mixed load. Each
 * case counts runs, clean outcomes and corrupt objects found (which must be 0), and the suite
 * prints one summary table.
 *
 * `npm test` runs a bounded subset; `npm run test:reliability` runs the full counts
 * (AIRLOCK_RELIABILITY=full: ≥ 50 resets, 30 kills, 12,000 malformed requests, 5 minutes of load).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Verifier } from '../../src/jobs/verify.js';
import { createLogger } from '../../src/logging/logger.js';
import { FilesystemDriver } from '../../src/storage/filesystem-driver.js';
import { Store } from '../../src/storage/store.js';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { runAirlock, spawnServe, waitHealthy } from '../helpers/cli.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { pullToLayout } from '../helpers/skopeo.js';
import { blobFile, exists } from '../helpers/store-files.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const FULL = process.env.AIRLOCK_RELIABILITY === 'full';
const N = {
  resets: FULL ? 60 : 12,
  manifestResets: FULL ? 50 : 8,
  kills: FULL ? 30 : 5,
  malformed: FULL ? 12_000 : 2_000,
  loadMs: FULL ? 300_000 : 6_000,
};
const MiB = 2 ** 20;
const silent = createLogger({ level: 'silent' });

interface Row { area: string; fault: string; runs: number; clean: number; corrupt: number; note?: string }
const rows: Row[] = [];
let malformedSent = 0;
let fiveHundreds = 0;

let work: string;
let up: TestUpstream;
let small: GeneratedImage;
let big: GeneratedImage;
let bigLayer: { digest: string; size: number };

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Problems `verify` finds, plus anything left in the temp area once nothing runs. */
async function corruptObjects(root: string, opts: { tmpMayHold?: boolean } = {}): Promise<number> {
  const store = new Store(new FilesystemDriver(root), { maxManifestSize: 4 * MiB, manifestCacheBytes: MiB });
  const report = await new Verifier(store, { repair: false }, silent).run();
  let leftovers = 0;
  if (!opts.tmpMayHold) {
    const tmp = path.join(root, '.airlock/tmp');
    for (const d of await readdir(tmp).catch(() => [] as string[])) {
      const files = await readdir(path.join(tmp, d)).catch(() => [] as string[]);
      leftovers += files.length;
    }
  }
  return report.problems.length + leftovers;
}

/** GET a URL; 'ok' when it answered 200 with bytes hashing to `digest`, else how it failed. */
async function fetchAndCheck(url: string, digest: string): Promise<'ok' | 'clean-failure' | 'corrupt'> {
  try {
    const r = await request(url, { headersTimeout: 30_000, bodyTimeout: 30_000 });
    const body = Buffer.from(await r.body.arrayBuffer());
    if (r.statusCode === 200) return sha(body) === digest ? 'ok' : 'corrupt';
    const j = JSON.parse(body.toString()) as { errors?: Array<{ code?: string }> };
    return j.errors?.[0]?.code ? 'clean-failure' : 'corrupt';
  } catch {
    // A transfer broken mid-body is how a failure is signalled once headers are out.
    return 'clean-failure';
  }
}

async function settle(reg: RunningAirlock): Promise<void> {
  const until = Date.now() + 20_000;
  while (reg.registry.fillsInFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-reliability-'));
  up = await startTestUpstream();
  small = await generateImage(path.join(work, 'small'), { layers: 2, layerSize: 64 * 1024, format: 'oci' });
  big = await generateImage(path.join(work, 'big'), { layers: 1, layerSize: 8 * MiB, format: 'oci' });
  await up.push(small, 'rel/small', 'v1');
  await up.push(big, 'rel/big', 'v1');
  bigLayer = big.blobs.find((b) => b.size > MiB)!;
}, 180_000);

afterAll(async () => {
  const table = [
    '| area | fault or input | runs | clean outcomes | corrupt objects found |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.area} | ${r.fault}${r.note ? ` (${r.note})` : ''} | ${r.runs} | ${r.clean} | ${r.corrupt} |`),
    '',
    `malformed requests sent: ${malformedSent}; 5xx answers to them: ${fiveHundreds}`,
  ].join('\n');
  console.log(`\nreliability summary (${FULL ? 'full' : 'bounded subset'}):\n${table}\n`);
  // Only a whole run replaces the recorded table (not one filtered with -t).
  const whole = ['upstream', 'crash', 'input', 'load'].every((area) => rows.some((r) => r.area === area));
  if (FULL && whole) await writeFile(path.resolve('test/reliability/last-full-run.md'), `${table}\n`);
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('upstream faults', () => {
  let reg: RunningAirlock;
  let root: string;
  const cfg = () =>
    `storage:\n  root: ${root}\nlog:\n  level: silent\ncache:\n  maxResumes: 2\n  tagTTL: 0s\n` +
    `upstreams:\n  docker.io:\n    url: ${up.proxy.url}\n    username: reader\n    password: read-secret\n    retries: 1\n    timeouts:\n      read: 1s\n      connect: 1s\n`;

  beforeAll(async () => {
    root = path.join(work, 'faults');
    reg = await startAirlock(cfg());
  });
  afterAll(async () => {
    await reg?.stop();
  });

  /** One fault: the request under it must end clean, the store must hold nothing corrupt, and the same request must succeed once the fault is gone. */
  async function trial(fault: () => void, url: string, digest: string, forget: () => Promise<void>, clear: () => void = () => undefined): Promise<{ clean: boolean; corrupt: number }> {
    up.proxy.reset();
    fault();
    const outcome = await fetchAndCheck(url, digest);
    await settle(reg);
    up.proxy.reset();
    clear();
    const corrupt = await corruptObjects(root);
    const after = await fetchAndCheck(url, digest);
    await settle(reg);
    await forget();
    return { clean: outcome !== 'corrupt' && after === 'ok', corrupt };
  }

  const forgetBlob = (d: string) => async () => {
    const { Digest } = await import('../../src/oci/digest.js');
    await reg.store.blobs.delete(Digest.parse(d));
    await reg.store.links.unlinkBlob('rel/big', Digest.parse(d));
  };
  const forgetManifest = (repo: string, d: string) => async () => {
    const { Digest } = await import('../../src/oci/digest.js');
    const digest = Digest.parse(d);
    await reg.store.links.deleteManifest(repo, digest).catch(() => undefined);
    await reg.store.blobs.delete(digest);
  };

  async function record(area: string, fault: string, runs: number, one: (i: number) => Promise<{ clean: boolean; corrupt: number }>, note?: string) {
    let clean = 0;
    let corrupt = 0;
    for (let i = 0; i < runs; i++) {
      const r = await one(i);
      if (r.clean) clean++;
      corrupt += r.corrupt;
    }
    rows.push({ area, fault, runs, clean, corrupt, note });
    expect(corrupt).toBe(0);
    expect(clean).toBe(runs);
  }

  it(`connection reset at random offsets in a blob (${N.resets} runs) and in a manifest (${N.manifestResets} runs)`, { timeout: 600_000 }, async () => {
    const blobUrl = `${reg.url}/v2/rel/big/blobs/${bigLayer.digest}`;
    await record('upstream', 'connection reset mid-blob, random offset, 1–4 cuts', N.resets, (i) =>
      trial(() => {
        up.proxy.faults.cutBlob = { afterBytes: 1 + Math.floor(Math.random() * (bigLayer.size - 2)), times: 1 + (i % 4) };
      }, blobUrl, bigLayer.digest, forgetBlob(bigLayer.digest)),
    );
    const mUrl = `${reg.url}/v2/rel/small/manifests/${small.manifestDigest}`;
    await record('upstream', 'connection reset mid-manifest, random offset', N.manifestResets, () =>
      trial(() => {
        up.proxy.faults.cutManifest = { afterBytes: 1 + Math.floor(Math.random() * (small.manifestBytes.length - 2)), times: 3 };
      }, mUrl, small.manifestDigest, forgetManifest('rel/small', small.manifestDigest)),
    );
  });

  it('stalls, error statuses with and without Retry-After, a close before headers', async () => {
    const mUrl = `${reg.url}/v2/rel/small/manifests/${small.manifestDigest}`;
    const cases: Array<[string, () => void]> = [
      ['stall longer than the read timeout', () => { up.proxy.faults.delayMs = 2500; }],
      ['500', () => { up.proxy.faults.status = 500; }],
      ['502', () => { up.proxy.faults.status = 502; }],
      ['503 with Retry-After: 1', () => { up.proxy.faults.status = 503; up.proxy.faults.retryAfter = '1'; }],
      ['429', () => { up.proxy.faults.status = 429; }],
      ['429 with Retry-After: 120', () => { up.proxy.faults.status = 429; up.proxy.faults.retryAfter = '120'; }],
      ['close before headers', () => { up.proxy.faults.closeBeforeHeaders = true; }],
    ];
    for (const [name, fault] of cases) {
      const t0 = Date.now();
      await record('upstream', name, 1, () => trial(fault, mUrl, small.manifestDigest, forgetManifest('rel/small', small.manifestDigest)));
      // Never a hang: the failing attempt and the good one together stay well under the timeouts' sum.
      expect(Date.now() - t0, name).toBeLessThan(15_000);
    }
  });

  it('wrong bodies: a flipped byte, a truncated body, extra bytes; a manifest with a flipped byte', async () => {
    const blobUrl = `${reg.url}/v2/rel/big/blobs/${bigLayer.digest}`;
    await record('upstream', 'blob with one flipped byte', 1, () => trial(() => { up.proxy.faults.corruptBlob = true; }, blobUrl, bigLayer.digest, forgetBlob(bigLayer.digest)));
    await record('upstream', 'blob truncated (every attempt cut)', 1, () => trial(() => { up.proxy.faults.cutBlob = { afterBytes: MiB, times: 10 }; }, blobUrl, bigLayer.digest, forgetBlob(bigLayer.digest)));
    await record('upstream', 'blob with extra bytes', 1, () => trial(() => { up.proxy.faults.extendBlob = true; }, blobUrl, bigLayer.digest, forgetBlob(bigLayer.digest)));
    const mUrl = `${reg.url}/v2/rel/small/manifests/${small.manifestDigest}`;
    await record('upstream', 'manifest with one flipped byte', 1, () => trial(() => { up.proxy.faults.corruptManifest = true; }, mUrl, small.manifestDigest, forgetManifest('rel/small', small.manifestDigest)));
  });

  it('the token endpoint fails, or hands out expired tokens', async () => {
    const mUrl = () => `${reg.url}/v2/rel/small/manifests/${small.manifestDigest}`;
    // Cached tokens would hide the fault: a new airlock asks for fresh ones.
    await reg.stop();
    reg = await startAirlock(cfg());
    await record('upstream', 'token endpoint answers 500', 1, () =>
      trial(() => { up.tokens.failWith = 500; }, mUrl(), small.manifestDigest, forgetManifest('rel/small', small.manifestDigest), () => { up.tokens.failWith = undefined; }),
    );
    await reg.stop();
    reg = await startAirlock(cfg());
    up.tokens.issueExpired = true;
    const expired = await fetchAndCheck(mUrl(), small.manifestDigest);
    up.tokens.issueExpired = false;
    await settle(reg);
    const corrupt = await corruptObjects(root);
    const after = await fetchAndCheck(mUrl(), small.manifestDigest);
    rows.push({ area: 'upstream', fault: 'token endpoint hands out expired tokens', runs: 1, clean: expired !== 'corrupt' && after === 'ok' ? 1 : 0, corrupt });
    expect(corrupt).toBe(0);
    expect(after).toBe('ok');
  });

  it('the upstream goes away for good: warm content serves, cold requests fail fast', async () => {
    const warm = await fetchAndCheck(`${reg.url}/v2/rel/small/manifests/v1`, small.manifestDigest);
    expect(warm).toBe('ok');
    for (const b of small.blobs) expect(await fetchAndCheck(`${reg.url}/v2/rel/small/blobs/${b.digest}`, b.digest)).toBe('ok');
    up.proxy.faults.down = true;
    try {
      let clean = 0;
      const runs = 5;
      for (let i = 0; i < runs; i++) {
        const okWarm = (await fetchAndCheck(`${reg.url}/v2/rel/small/manifests/v1`, small.manifestDigest)) === 'ok';
        const t0 = Date.now();
        const cold = await fetchAndCheck(`${reg.url}/v2/rel/big/blobs/${bigLayer.digest}`, bigLayer.digest);
        if (okWarm && cold === 'clean-failure' && Date.now() - t0 < 5000) clean++;
      }
      const corrupt = await corruptObjects(root);
      rows.push({ area: 'upstream', fault: 'upstream gone: warm pulls and cold requests', runs, clean, corrupt });
      expect(corrupt).toBe(0);
      expect(clean).toBe(runs);
    } finally {
      up.proxy.faults.down = false;
    }
  });
});

describe('crashes', () => {
  it(`kill -9 at random moments during cold fills and pushes (${N.kills} runs): no partial object, verify clean, completed images still pull`, { timeout: 600_000 }, async () => {
    const root = path.join(work, 'kill');
    const port = await freePort();
    const cfg = path.join(work, 'kill.yml');
    await writeFile(cfg, `listen: "127.0.0.1:${port}"\nstorage:\n  root: ${root}\nlog:\n  level: warn\n${mirrorUpstreams(up)}\npush:\n  repositories: ["local/**"]\n`);
    const url = `http://127.0.0.1:${port}`;
    const start = async () => {
      const p = spawnServe(cfg);
      await waitHealthy(url, { out: p.out });
      return p.child;
    };
    // A completed image, pulled before any kill.
    let child = await start();
    const first = await pullToLayout(`docker://127.0.0.1:${port}/rel/small:v1`, path.join(work, 'kill-first'));
    expect(first.manifestDigest).toBe(small.manifestDigest);
    const pushData = randomBytes(4 * MiB);
    let clean = 0;
    let corrupt = 0;
    for (let i = 0; i < N.kills; i++) {
      const pid = child.pid!;
      up.proxy.faults.slowBlobs = 16 * MiB;
      const work1 = i % 2 === 0
        ? request(`${url}/v2/rel/big/blobs/${bigLayer.digest}`).then((r) => r.body.dump()).catch(() => undefined)
        : (async () => {
            const post = await request(`${url}/v2/local/app${i}/blobs/uploads/`, { method: 'POST' });
            await post.body.dump();
            const loc = String(post.headers.location);
            for (let off = 0; off < pushData.length; off += MiB) {
              const r = await request(`${url}${loc}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${off + MiB - 1}` }, body: pushData.subarray(off, off + MiB) });
              await r.body.dump();
            }
            const put = await request(`${url}${loc}?digest=${sha(pushData)}`, { method: 'PUT' });
            await put.body.dump();
          })().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 30 + Math.floor(Math.random() * 400)));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      await work1;
      up.proxy.faults.slowBlobs = undefined;
      child = await start();
      // The restart removed the killed process's temp files; nothing partial is visible.
      const leftover = await readdir(path.join(root, '.airlock/tmp', String(pid))).then(() => 1, () => 0);
      const bad = (await corruptObjects(root, { tmpMayHold: true })) + leftover;
      const pushed = await stat(blobFile(root, sha(pushData))).then((s) => s.size, () => -1);
      const blobOk = pushed === -1 || pushed === pushData.length;
      const stillPulls = (await pullToLayout(`docker://127.0.0.1:${port}/rel/small:v1`, path.join(work, `kill-${i}`)).then((p) => p.manifestDigest)) === small.manifestDigest;
      corrupt += bad + (blobOk ? 0 : 1);
      if (bad === 0 && blobOk && stillPulls) clean++;
    }
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rows.push({ area: 'crash', fault: 'kill -9 during cold fills and pushes', runs: N.kills, clean, corrupt });
    expect(corrupt).toBe(0);
    expect(clean).toBe(N.kills);
  });
});

const canMount = await (async () => {
  if (process.getuid?.() !== 0) return false;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-mount-probe-'));
  try {
    await promisify(execFile)('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    await promisify(execFile)('umount', [dir]);
    return true;
  } catch {
    return false;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
})();

describe('disk full', () => {
  it.skipIf(!canMount)('a fill and a push on a full tmpfs store: a clear error, an error log line, no partial object, normal service once space is freed', async () => {
    const dir = path.join(work, 'full');
    await mkdir(dir);
    const sh = promisify(execFile);
    await sh('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
    try {
      const root = path.join(dir, 'store');
      const reg = await startAirlock(`storage:\n  root: ${root}\nlog:\n  level: warn\n${mirrorUpstreams(up)}\npush:\n  repositories: ["local/**"]\n`);
      try {
        let clean = 0;
        // A fill that does not fit.
        const fill = await fetchAndCheck(`${reg.url}/v2/rel/big/blobs/${bigLayer.digest}`, bigLayer.digest);
        await settle(reg);
        if (fill === 'clean-failure') clean++;
        // A push that does not fit.
        const data = randomBytes(6 * MiB);
        const r = await request(`${reg.url}/v2/local/app/blobs/uploads/?digest=${sha(data)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: data });
        const body = (await r.body.json()) as { errors?: Array<{ message: string }> };
        if (r.statusCode === 507 && /storage is full/.test(body.errors?.[0]?.message ?? '')) clean++;
        // One error line for each: the fill that could not be written, the push refused.
        const errors = reg.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
        expect(errors.some((l) => /ENOSPC/.test(JSON.stringify(l)) && /fill|blob/i.test(String(l.msg)))).toBe(true);
        expect(errors.some((l) => /ENOSPC/.test(JSON.stringify(l)) && l.msg === 'request failed')).toBe(true);
        const corrupt = await corruptObjects(root);
        expect(corrupt).toBe(0);
        // Space freed: both work.
        await sh('mount', ['-o', 'remount,size=64m', dir]);
        const again = await fetchAndCheck(`${reg.url}/v2/rel/big/blobs/${bigLayer.digest}`, bigLayer.digest);
        await settle(reg);
        const r2 = await request(`${reg.url}/v2/local/app/blobs/uploads/?digest=${sha(data)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: data });
        await r2.body.dump();
        const recovered = again === 'ok' && r2.statusCode === 201;
        rows.push({ area: 'disk', fault: 'disk full during a fill and a push (tmpfs)', runs: 2, clean: recovered ? clean : 0, corrupt });
        expect(clean).toBe(2);
        expect(recovered).toBe(true);
      } finally {
        await reg.stop();
      }
    } finally {
      await sh('umount', ['-l', dir]).catch(() => undefined);
    }
  });
});

/** Malformed requests over every route. */
/** `lenient`: a parameter a server may ignore (RFC 9110 lets a bad Range be ignored; `n` on a manifest means nothing): 2xx or a 4xx error, never 5xx. */
function* corpus(digest: string): Generator<{ method: string; path: string; headers?: Record<string, string>; body?: Buffer; lenient?: boolean }> {
  const badNames = ['..', '%2e%2e', 'a/%2e%2e/b', 'a%2fb', '/etc/passwd', 'a/../../etc', 'a\u0000b', 'A', 'UPPER/case', 'a//b', '/a', 'a/', '-a', 'a-', 'a__b__', 'a.', `${'a'.repeat(300)}`, 'a/b/'.repeat(80), '%00', '%ff', '%', 'a%20b', '.', '...', 'a/./b', 'ä', 'a:b', 'a@b'];
  const badDigests = ['sha256:', 'sha256:xyz', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `sha256:${'a'.repeat(65)}`, `md5:${'a'.repeat(32)}`, `sha512:${'a'.repeat(64)}`, 'sha256', ':abc', '%2e%2e', `sha256:${'a'.repeat(64)}/../x`, 'sha256:../../etc/passwd'];
  const badTags = ['', '-x', '.x', 'x'.repeat(129), 'a:b', 'a/b', '%2e%2e', 'a b', 'ä'];
  const badQueries = ['?n=-1', '?n=abc', '?n=1e9', '?n=99999999999999999999', '?last=%00', '?n=0&last=', '?n=1&n=2', '?ns=..', '?ns=a/b', '?ns=%2f'];
  const badRanges = ['bytes=', 'bytes=-', 'bytes=5-1', 'bytes=0-1,2-3', `bytes=${'0-1,'.repeat(200)}0-1`, 'bytes=abc', 'items=0-1', 'bytes=99999999999999999999-'];
  for (;;) {
    for (const raw of badNames) {
      // Raw non-ASCII bytes only on a GET (a parser-level refusal cannot know a HEAD wanted no body).
      yield { method: 'GET', path: `/v2/${raw}/manifests/latest` };
      const n = raw.replace(/[\u0080-\uffff]/g, (c) => encodeURIComponent(c));
      yield { method: 'HEAD', path: `/v2/${n}/blobs/${digest}` };
      yield { method: 'GET', path: `/v2/${n}/tags/list` };
      yield { method: 'POST', path: `/v2/${n}/blobs/uploads/` };
      yield { method: 'PUT', path: `/v2/${n}/manifests/x`, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: Buffer.from('{}') };
      yield { method: 'DELETE', path: `/v2/${n}/blobs/${digest}` };
      yield { method: 'GET', path: `/v2/${n}/referrers/${digest}` };
    }
    for (const d of badDigests) {
      yield { method: 'GET', path: `/v2/rel/small/blobs/${d}` };
      yield { method: 'GET', path: `/v2/rel/small/manifests/${d}` };
      yield { method: 'PUT', path: `/v2/local/x/blobs/uploads/00000000-0000-4000-8000-000000000000?digest=${d}` };
      yield { method: 'POST', path: `/v2/local/x/blobs/uploads/?digest=${d}`, body: Buffer.from('x') };
      yield { method: 'POST', path: `/v2/local/x/blobs/uploads/?mount=${d}&from=rel/small` };
      yield { method: 'GET', path: `/v2/rel/small/referrers/${d}` };
    }
    for (const t of badTags) {
      yield { method: 'GET', path: `/v2/rel/small/manifests/${t}` };
      yield { method: 'PUT', path: `/v2/local/x/manifests/${t}`, body: Buffer.from('{}') };
    }
    for (const q of badQueries) {
      yield { method: 'GET', path: `/v2/_catalog${q}`, lenient: true };
      yield { method: 'GET', path: `/v2/rel/small/tags/list${q}`, lenient: true };
      yield { method: 'GET', path: `/v2/rel/small/manifests/v1${q}`, lenient: true };
    }
    for (const range of badRanges) yield { method: 'GET', path: `/v2/rel/small/blobs/${digest}`, headers: { range }, lenient: true };
    // Manifests: invalid JSON, wrong types, oversized, wrong media type.
    for (const body of ['', '{', '[]', 'null', '{"schemaVersion":1}', '{"schemaVersion":2,"layers":"x"}', '{"schemaVersion":2,"config":{"digest":"sha256:x"}}', '{"schemaVersion":2,"manifests":[{}]}', 'x'.repeat(5 * MiB)]) {
      yield { method: 'PUT', path: '/v2/local/x/manifests/t', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: Buffer.from(body) };
    }
    // Uploads: unknown sessions, bad Content-Range, lying Content-Length.
    yield { method: 'PATCH', path: '/v2/local/x/blobs/uploads/not-a-uuid', body: Buffer.from('x') };
    yield { method: 'PATCH', path: '/v2/local/x/blobs/uploads/../../../etc/passwd', body: Buffer.from('x') };
    yield { method: 'PATCH', path: '/v2/local/x/blobs/uploads/00000000-0000-4000-8000-000000000000', headers: { 'content-range': 'abc' }, body: Buffer.from('x') };
    yield { method: 'GET', path: '/v2/local/x/blobs/uploads/%2e%2e' };
    yield { method: 'DELETE', path: '/v2/local/x/blobs/uploads/00000000-0000-4000-8000-000000000000' };
    yield { method: 'TRACE', path: '/v2/' };
    yield { method: 'GET', path: `/v2/${'x/'.repeat(1500)}manifests/a` };
  }
}

describe('hostile input', () => {
  it(`${N.malformed} malformed requests against every route: 4xx with OCI error JSON, never 5xx, never a hang, nothing outside the root, bounded memory`, { timeout: 600_000 }, async () => {
    const parent = path.join(work, 'hostile');
    const root = path.join(parent, 'store');
    await mkdir(path.join(parent, 'outside'), { recursive: true });
    await writeFile(path.join(parent, 'outside', 'sentinel'), 'untouched');
    const reg = await startAirlock(`storage:\n  root: ${root}\n  delete:\n    enabled: true\nlog:\n  level: silent\n${mirrorUpstreams(up)}\npush:\n  repositories: ["local/**"]\n`);
    try {
      // Something to aim at.
      await pullToLayout(`docker://${reg.host}/rel/small:v1`, path.join(work, 'hostile-pull'));
      const digest = small.blobs[0]!.digest;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      const u = new URL(reg.url);
      const send = (req: { method: string; path: string; headers?: Record<string, string>; body?: Buffer }) =>
        new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
          const r = http.request({ host: u.hostname, port: u.port, path: req.path, method: req.method, headers: req.headers, agent, timeout: 10_000 }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
            res.on('error', reject);
          });
          r.on('timeout', () => r.destroy(new Error(`hang: ${req.method} ${req.path}`)));
          r.on('error', reject);
          r.end(req.body);
        });
      const rss0 = process.memoryUsage().rss;
      const gen = corpus(digest);
      let bad = 0;
      const failures: string[] = [];
      const worker = async () => {
        while (malformedSent < N.malformed) {
          const req = gen.next().value as { method: string; path: string; headers?: Record<string, string>; body?: Buffer; lenient?: boolean };
          malformedSent++;
          let res: { status: number; body: Buffer };
          try {
            res = await send(req);
          } catch (e) {
            // Node's client refuses to send some paths (a NUL byte): nothing reached the server.
            if (/Request path contains unescaped characters|Invalid character/.test((e as Error).message)) continue;
            bad++;
            failures.push(`${req.method} ${req.path.slice(0, 80)}: ${(e as Error).message}`);
            continue;
          }
          if (res.status >= 500) fiveHundreds++;
          let json = false;
          try {
            json = Array.isArray((JSON.parse(res.body.toString()) as { errors?: unknown }).errors);
          } catch { /* not JSON */ }
          // Refused with a 4xx and OCI error JSON; a lenient item may also be answered normally.
          const ok = res.status >= 400 && res.status < 500 ? json || req.method === 'HEAD' : res.status < 300 && req.lenient === true;
          if (!ok) {
            bad++;
            if (failures.length < 10) failures.push(`${req.method} ${req.path.slice(0, 80)} → ${res.status} ${res.body.toString().slice(0, 80)}`);
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      agent.destroy();
      // Slow-loris bodies: connections that trickle never block other clients.
      const loris = Array.from({ length: 20 }, () => {
        const r = http.request({ host: u.hostname, port: u.port, path: '/v2/local/x/manifests/t', method: 'PUT', headers: { 'content-type': 'application/json', 'content-length': '1000' } });
        r.on('error', () => undefined);
        r.write('{');
        return r;
      });
      const during = await request(`${reg.url}/v2/rel/small/manifests/v1`);
      await during.body.dump();
      expect(during.statusCode).toBe(200);
      for (const r of loris) r.destroy();
      const rssGrowth = (process.memoryUsage().rss - rss0) / MiB;
      const outside = await readdir(parent);
      expect(outside.sort()).toEqual(['outside', 'store']);
      expect(await readFile(path.join(parent, 'outside', 'sentinel'), 'utf8')).toBe('untouched');
      const corrupt = await corruptObjects(root);
      rows.push({ area: 'input', fault: 'malformed requests (names, digests, tags, n/last, Range, manifests, uploads, slow-loris)', runs: malformedSent, clean: malformedSent - bad, corrupt, note: `RSS +${rssGrowth.toFixed(0)} MiB` });
      expect(failures).toEqual([]);
      expect(fiveHundreds).toBe(0);
      expect(corrupt).toBe(0);
      expect(rssGrowth).toBeLessThan(200);
    } finally {
      await reg.stop();
    }
  });
});

describe('hostile input to the command line', () => {
  it('bad bundles, bad configs and bad image references: one clear line and a non-zero exit, the store untouched', async () => {
    const dir = path.join(work, 'cli');
    await mkdir(dir, { recursive: true });
    const root = path.join(dir, 'store');
    const good = path.join(dir, 'good.yml');
    await writeFile(good, `storage:\n  root: ${root}\nlog:\n  level: warn\n`);
    const bundles: Array<[string, Buffer]> = [
      ['empty.tar', Buffer.alloc(0)],
      ['zeros.tar', Buffer.alloc(10_240)],
      ['random.tar', randomBytes(100_000)],
      ['text.tar', Buffer.from('not a tar at all\n')],
    ];
    const configs: Array<[string, string]> = [
      ['bad-yaml.yml', 'storage: [\n'],
      ['bad-key.yml', 'storage:\n  rooot: x\n'],
      ['bad-type.yml', 'listen: 5000\n'],
      ['bad-size.yml', 'storage:\n  maxSize: lots\n'],
      ['bad-watermarks.yml', 'storage:\n  maxSize: 1GiB\n  evictAt: 0.5\n  evictTo: 0.9\n'],
      ['bad-auth.yml', `listen: "127.0.0.1:0"\nstorage:\n  root: ${root}\nauth:\n  htpasswd: ${path.join(dir, 'missing-htpasswd')}\n`],
    ];
    const cases: string[][] = [];
    for (const [name, bytes] of bundles) {
      await writeFile(path.join(dir, name), bytes);
      cases.push(['import', '--config', good, path.join(dir, name)]);
    }
    for (const [name, text] of configs) {
      await writeFile(path.join(dir, name), text);
      // The htpasswd file is read by serve (the offline commands have no logins to check).
      cases.push([name === 'bad-auth.yml' ? 'serve' : 'verify', '--config', path.join(dir, name)]);
    }
    cases.push(['import', '--config', good, path.join(dir, 'does-not-exist.tar')]);
    for (const ref of ['UPPER/case:1', 'a/../b:1', 'x@sha256:short', ':tag', 'a:b:c']) cases.push(['freeze', '--config', good, '--out', path.join(dir, 'out.tar'), ref]);
    cases.push(['gc', '--config', good, '--grace', 'soon']);
    cases.push(['no-such-command']);
    let clean = 0;
    const bad: string[] = [];
    for (const args of cases) {
      const r = await runAirlock(args, 30_000);
      const lines = r.stderr.trim().split('\n').filter(Boolean);
      if (r.code !== 0 && lines.length === 1 && /^airlock: /.test(lines[0]!)) clean++;
      else bad.push(`${args.join(' ')} → ${r.code}: ${r.stderr.slice(0, 200)}`);
    }
    const blobs = await readdir(path.join(root, 'docker/registry/v2/blobs')).catch(() => [] as string[]);
    rows.push({ area: 'input', fault: 'command line: bad bundles, configs, references, options', runs: cases.length, clean, corrupt: blobs.length });
    expect(bad).toEqual([]);
    expect(blobs).toEqual([]);
  });
});

describe('load', () => {
  it('sustained warm pulls on 64 connections with a trickle of cold ones while gc and eviction run: zero errors, flat memory, no descriptor growth', async () => {
    // airlock runs in its own process, as in production, so its memory and descriptors are its
    // own (not the load client's). Its store limit holds the two images (it is a ceiling: a blob
    // larger would never be stored), but every cold fill of the big one pushes the store over
    // storage.evictAt, and serve's own eviction removes the least recently used image (the big
    // one) a second later, so the next cold pull fills it again. gc runs beside it as separate
    // `airlock gc` processes, as an operator's timer would.
    const root = path.join(work, 'load');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const cfg = path.join(work, 'load.yml');
    await writeFile(cfg, `listen: "127.0.0.1:${port}"\nstorage:\n  root: ${root}\n  maxSize: 8704KiB\n  evictMinAge: 0s\nlog:\n  level: warn\n${mirrorUpstreams(up)}\n`);
    const server = spawnServe(cfg);
    const child = server.child;
    const pid = child.pid!;
    const rssOf = async () => Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
    const fds = async () => (await readdir(`/proc/${pid}/fd`)).length;
    const metric = async (name: string) => {
      const r = await request(`${url}/metrics`);
      const text = await r.body.text();
      return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    };
    try {
      await waitHealthy(url, { out: server.out });
      await pullToLayout(`docker://127.0.0.1:${port}/rel/small:v1`, path.join(work, 'load-warm'));
      const pool = new Pool(url, { connections: 64 });
      const started = Date.now();
      const until = started + N.loadMs;
      // Memory is sampled every second; "start" is the first sample after a warm-up tenth of the run.
      const samples: Array<{ t: number; rss: number }> = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          samples.push({ t: Date.now() - started, rss: await rssOf() });
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      let ok = 0;
      let errors = 0;
      const failures: string[] = [];
      const warm = async () => {
        while (Date.now() < until) {
          const path = ok % 3 === 0 ? `/v2/rel/small/manifests/v1` : `/v2/rel/small/blobs/${small.blobs[ok % small.blobs.length]!.digest}`;
          try {
            const r = await pool.request({ path, method: 'GET', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
            await r.body.dump();
            if (r.statusCode === 200) ok++;
            else {
              errors++;
              if (failures.length < 5) failures.push(`${path}: ${r.statusCode}`);
            }
          } catch (e) {
            errors++;
            if (failures.length < 5) failures.push(`${path}: ${(e as Error).message}`);
          }
        }
      };
      const bigFile = blobFile(root, bigLayer.digest);
      const cold = async () => {
        let fills = 0;
        while (Date.now() < until) {
          const m = await request(`${url}/v2/rel/big/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
          await m.body.dump();
          const r = await fetchAndCheck(`${url}/v2/rel/big/blobs/${bigLayer.digest}`, bigLayer.digest);
          if (m.statusCode !== 200 || r !== 'ok') {
            errors++;
            if (failures.length < 5) failures.push(`cold pull: manifest ${m.statusCode}, blob ${r}`);
          }
          fills++;
          // Wait for eviction to take the big image out again (bounded).
          for (const limit = Date.now() + 10_000; Date.now() < limit && Date.now() < until && (await exists(bigFile)); ) await new Promise((res) => setTimeout(res, 100));
        }
        return fills;
      };
      const gc = async () => {
        let runs = 0;
        while (Date.now() < until) {
          const r = await runAirlock(['gc', '--config', cfg, '--grace', '1h'], 60_000);
          if (r.code !== 0) {
            errors++;
            if (failures.length < 5) failures.push(`gc: ${r.code} ${r.stderr.slice(0, 200)}`);
          }
          runs++;
          await new Promise((res) => setTimeout(res, 1000));
        }
        return runs;
      };
      const heap0 = await metric('airlock_nodejs_heap_size_used_bytes');
      const fd0 = await fds();
      const [, colds, gcRuns] = await Promise.all([Promise.all(Array.from({ length: 64 }, warm)), cold(), gc()]);
      await pool.close();
      sampling = false;
      await sampler;
      const evictions = await metric('airlock_evictions_total');
      const heap1 = await metric('airlock_nodejs_heap_size_used_bytes');
      const heapTotal1 = await metric('airlock_nodejs_heap_size_total_bytes');
      const external1 = await metric('airlock_nodejs_external_memory_bytes');
      const fd1 = await fds();
      const warmed = samples.filter((s) => s.t >= N.loadMs / 10);
      const rss0 = (warmed[0] ?? samples[0]!).rss;
      const rss1 = samples[samples.length - 1]!.rss;
      const rssMax = Math.max(...samples.map((s) => s.rss));
      // RSS at each quarter of the run, to tell a trend from noise.
      const quarters = [1, 2, 3, 4].map((q) => samples.filter((s) => s.t <= (N.loadMs * q) / 4).pop() ?? samples[0]!);
      child.kill('SIGTERM');
      await new Promise((res) => child.once('exit', res));
      const corrupt = await corruptObjects(root);
      const mib = (b: number) => (b / MiB).toFixed(0);
      rows.push({
        area: 'load', fault: `${N.loadMs / 1000} s, 64 connections warm + cold fills, eviction (serve's own) and \`airlock gc\` running`, runs: ok + colds, clean: ok + colds - errors, corrupt,
        note: `airlock in its own process: RSS ${mib(rss0)} → ${mib(rss1)} MiB (by quarter ${quarters.map((q) => mib(q.rss)).join(', ')}; max ${mib(rssMax)}), heap used ${mib(heap0)} → ${mib(heap1)} MiB (total ${mib(heapTotal1)}, external ${mib(external1)} at the end), fds ${fd0} → ${fd1}; ${colds} cold fills, ${evictions} evictions, ${gcRuns} gc runs`,
      });
      expect(failures).toEqual([]);
      expect(errors).toBe(0);
      expect(corrupt).toBe(0);
      expect(colds).toBeGreaterThan(0);
      expect(evictions).toBeGreaterThan(0);
      expect(fd1 - fd0).toBeLessThan(10);
      // Flat: after the warm-up, RSS may move by GC timing but must not climb with the load. Only
      // the full run can tell: the bounded run's six seconds are still warm-up (heap and allocator
      // growing to their working size), which a CI machine busy with other files stretches.
      if (FULL) expect((rss1 - rss0) / MiB).toBeLessThan(24);
      // And no runaway in between (the peak is reported: cold fills and eviction scans lift it for a moment).
      expect(rssMax / MiB).toBeLessThan(224);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, N.loadMs + 120_000);
});
