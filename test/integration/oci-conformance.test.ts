/**
 * The official OCI distribution-spec conformance suite (v1.1.1, all four workflows: pull, push,
 * content discovery, content management) against airlock, as a plain registry and beside
 * upstreams with push.repositories covering the suite's names. Every spec must pass; the four the
 * suite skips on its own need optional features (automatic cross-mount, a configured tag list).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock } from '../helpers/airlock.js';
import { conformanceBinary, removeReport, runConformance, type ConformanceResult } from '../helpers/oci-conformance.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

/** What the suite prints when everything passes. */
const ALL_PASS = { line: 'conformance: 75 passed, 0 failed, 4 skipped', failures: [] };

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-oci-conformance-'));
  await conformanceBinary(); // built once per version of the sources, then cached in the temp dir
}, 600_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const verdict = (r: ConformanceResult) => ({ line: r.line, failures: r.failures });

describe('OCI distribution-spec conformance suite', () => {
  it('passes every spec against airlock as a plain registry', async () => {
    const root = path.join(work, 'plain');
    const reg = await startAirlock(`storage:\n  root: ${root}\n  delete:\n    enabled: true\nlog:\n  level: fatal\n`);
    try {
      const r = await runConformance(reg.url);
      expect(verdict(r), `report: ${r.reportDir}`).toEqual(ALL_PASS);
      await removeReport(r);
    } finally {
      await reg.stop();
    }
  });

  describe('beside upstreams', () => {
    let up: TestUpstream;
    beforeAll(async () => {
      up = await startTestUpstream();
    });
    afterAll(async () => {
      await up?.stop();
    });

    it('passes every spec in the names push.repositories covers', async () => {
      const root = path.join(work, 'mirror');
      const reg = await startAirlock(
        `storage:\n  root: ${root}\n  delete:\n    enabled: true\nlog:\n  level: fatal\n${mirrorUpstreams(up)}\npush:\n  repositories: ["conformance/**"]\n`,
      );
      try {
        const r = await runConformance(reg.url);
        expect(verdict(r), `report: ${r.reportDir}`).toEqual(ALL_PASS);
        await removeReport(r);
        // Local names are never looked up upstream.
        expect(up.proxy.records.filter((x) => x.path.includes('/conformance/'))).toEqual([]);
      } finally {
        await reg.stop();
      }
    });
  });
});
