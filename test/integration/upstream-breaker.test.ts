/**
 * One client must not switch the upstream off for everyone (issue 17, item 6), with real parts:
 * Distribution answers 500 for a layer's digest asked as a manifest. That request's failure is
 * its own (502); the circuit breaker opens only when the upstream itself fails: connections,
 * timeouts, or its /v2/.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { pullToLayout } from '../helpers/skopeo.js';
import { READER, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

let work: string;
let up: TestUpstream;
let app: GeneratedImage;
let other: GeneratedImage;
let n = 0;
const running: RunningAirlock[] = [];

async function airlockFor(): Promise<RunningAirlock> {
  const a = await startAirlock(
    [
      `storage:\n  root: ${path.join(work, `store-${n++}`)}`,
      'log:\n  level: warn',
      'upstreams:',
      '  docker.io:',
      `    url: ${up.proxy.url}`,
      `    username: ${READER.user}`,
      `    password: ${READER.password}`,
      '    timeouts:\n      read: 5s\n      connect: 2s',
      '    retries: 2',
    ].join('\n'),
  );
  running.push(a);
  return a;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-breaker-'));
  up = await startTestUpstream();
  app = await generateImage(path.join(work, 'g-app'), { layers: 1, layerSize: 100_000, format: 'oci' });
  other = await generateImage(path.join(work, 'g-other'), { layers: 2, layerSize: 100_000, format: 'docker' });
  await up.push(app, 'library/app', '1');
  await up.push(other, 'team/other', '1');
}, 300_000);

afterAll(async () => {
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

afterEach(async () => {
  for (const a of running.splice(0)) await a.stop();
  up.proxy.reset();
});

describe('the circuit breaker', () => {
  it('a manifest GET the upstream answers 500 for gets 502 and does not make other images\' cold pulls fail', async () => {
    const a = await airlockFor();
    const layer = app.blobs.find((b) => b.mediaType.includes('layer'))!;
    // Distribution answers 500 for a layer's digest asked as a manifest; two clients ask.
    for (let i = 0; i < 2; i++) {
      const r = await request(`${a.url}/v2/library/app/manifests/${layer.digest}`);
      await r.body.dump();
      expect(up.proxy.records.some((x) => x.path.includes(`/manifests/${layer.digest}`) && x.status === 500)).toBe(true);
      expect(r.statusCode).toBe(502);
    }
    // The upstream's status is in the logged reason.
    expect(a.logs.some((l) => JSON.stringify(l).includes('answered 500'))).toBe(true);
    // Everyone else's cold pulls still reach the upstream.
    const p = await pullToLayout(`docker://${a.host}/team/other:1`, path.join(work, `pull-${n++}`), { all: true });
    expect(p.manifestDigest).toBe(other.manifestDigest);
  });

  it('still opens when the upstream\'s /v2/ itself fails: then requests fail fast without reaching it', async () => {
    const a = await airlockFor();
    up.proxy.faults.status = 500;
    // Each request that fails through its retries checks /v2/; when that fails too, it counts
    // against the upstream, and a few in a row open the breaker (bounded loop).
    let opened = -1;
    for (let i = 0; i < 10 && opened < 0; i++) {
      const before = up.proxy.records.length;
      const r = await request(`${a.url}/v2/team/other/manifests/t${i}`);
      await r.body.dump();
      expect(r.statusCode).toBe(503);
      if (up.proxy.records.length === before) opened = i;
    }
    expect(up.proxy.records.some((x) => x.path === '/v2/')).toBe(true);
    expect(opened).toBeGreaterThan(0);
    const seen = up.proxy.records.length;
    const t0 = Date.now();
    const r = await request(`${a.url}/v2/team/other/manifests/1`);
    const body = (await r.body.json()) as { errors: Array<{ code: string }> };
    expect(r.statusCode).toBe(503);
    expect(body.errors[0]!.code).toBe('UNAVAILABLE');
    expect(up.proxy.records.length).toBe(seen);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
