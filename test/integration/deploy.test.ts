/**
 * What deploy/ ships for operators: the Prometheus alerting rules, checked and unit-tested with
 * promtool (Debian's prometheus package; scripts/ensure-test-tools.sh installs it), and the
 * Grafana dashboard, whose queries may only name metrics airlock exports (a renamed metric breaks
 * this test). And the two metrics the alerts needed that airlock did not export before: the
 * store's ceiling and the served certificate's expiry, which follows a reload (SIGHUP).
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { UpstreamClient } from '../../src/upstream/client.js';
import { startAirlock } from '../helpers/airlock.js';

const run = promisify(execFile);
const RULES = path.resolve('deploy/prometheus/airlock-rules.yml');
const RULE_TESTS = path.resolve('deploy/prometheus/airlock-rules.test.yml');
const DASHBOARD = path.resolve('deploy/grafana/airlock-dashboard.json');

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-deploy-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function promtool(...args: string[]): Promise<{ code: number; out: string }> {
  return run('promtool', args, { timeout: 60_000 }).then(
    (x) => ({ code: 0, out: x.stdout + x.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : 1, out: (e.stdout ?? '') + (e.stderr ?? '') }),
  );
}

/** Every series name airlock can export: each metric of a registry with an upstream, a fleet, a ceiling and tls. */
async function exportedNames(): Promise<Set<string>> {
  const upstream = new UpstreamClient({ name: 'docker.io', url: 'http://127.0.0.1:9', insecure: false, concurrency: 1, connectTimeout: 1000, readTimeout: 1000, retries: 0 }, createLogger({ level: 'silent' }));
  try {
    const m = new Metrics(new Map([['docker.io', upstream]]));
    m.watchFleet({ led: 0, followed: 0, takeovers: 0, peerBytes: 0, tagChecksShared: 0 });
    m.storeCeiling(1);
    m.tlsCertExpires(1);
    const names = new Set<string>();
    for (const x of await m.collectors.getMetricsAsJSON()) {
      names.add(x.name);
      if (String(x.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${x.name}${s}`);
      if (String(x.type) === 'summary') for (const s of ['_sum', '_count']) names.add(`${x.name}${s}`);
    }
    return names;
  } finally {
    await upstream.close();
  }
}

/** The airlock_* metric names a PromQL expression uses. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bairlock_[a-zA-Z0-9_]+/g)].map((m) => m[0]);
}

describe('deploy/prometheus/airlock-rules.yml', () => {
  it('passes promtool check rules', async () => {
    const r = await promtool('check', 'rules', RULES);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS: 7 rules found/);
  });

  it('passes its unit tests (promtool test rules)', async () => {
    const r = await promtool('test', 'rules', RULE_TESTS);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS/);
  });

  it('alerts on what the issue asks for, with metrics airlock exports', async () => {
    const text = await readFile(RULES, 'utf8');
    const alerts = [...text.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    expect(alerts).toEqual([
      'AirlockUpstreamDown', 'AirlockUpstreamCircuitOpen', 'AirlockStoreNearlyFull', 'AirlockDigestMismatch',
      'AirlockFillsFailing', 'AirlockUpstreamRateLimitNearlySpent', 'AirlockTLSCertificateExpiring',
    ]);
    const names = await exportedNames();
    const used = metricNames(text.split('\n').filter((l) => !/^\s*(#|summary:|description:)/.test(l)).join('\n'));
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((n) => !names.has(n))).toEqual([]);
  });
});

describe('deploy/grafana/airlock-dashboard.json', () => {
  interface Panel { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: Array<{ expr: string; refId: string }>; datasource?: { uid: string } }

  it('is a dashboard whose every query names only metrics airlock exports', async () => {
    const d = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { title: string; uid: string; panels: Panel[]; templating: { list: Array<{ name: string; type: string; definition?: string }> } };
    expect(d.title).toBe('airlock');
    expect(d.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(d.templating.list.map((v) => v.name)).toEqual(['datasource', 'instance']);
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const names = await exportedNames();
    const exprs: string[] = d.templating.list.flatMap((v) => (v.definition ? [v.definition] : []));
    for (const p of d.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(metricNames(t.expr), `${p.title}: ${t.expr}`).not.toEqual([]);
        exprs.push(t.expr);
      }
    }
    const used = new Set(exprs.flatMap(metricNames));
    expect([...used].filter((n) => !names.has(n))).toEqual([]);
    // The main metrics each have a panel.
    for (const n of ['airlock_http_requests_total', 'airlock_cache_requests_total', 'airlock_upstream_available', 'airlock_upstream_ratelimit_remaining',
      'airlock_fills_total', 'airlock_store_bytes', 'airlock_store_max_bytes', 'airlock_tls_cert_expiry_timestamp_seconds', 'airlock_process_resident_memory_bytes']) {
      expect(used.has(n), n).toBe(true);
    }
  });
});

describe('the metrics the alerts need', () => {
  async function selfSigned(name: string, days: number): Promise<{ cert: string; key: string; notAfter: number }> {
    const cert = path.join(work, `${name}.crt`);
    const key = path.join(work, `${name}.key`);
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', String(days), '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert], { timeout: 30_000 });
    return { cert, key, notAfter: Date.parse(new X509Certificate(await readFile(cert)).validTo) / 1000 };
  }

  function sample(text: string, name: string): number | undefined {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  }

  it('exports storage.maxSize and the served certificate\'s expiry, which follows a reload', async () => {
    const first = await selfSigned('first', 10);
    const a = await startAirlock([
      `storage:\n  root: ${path.join(work, 'store')}\n  maxSize: 3GiB`,
      'log:\n  level: warn',
      `tls:\n  cert: ${first.cert}\n  key: ${first.key}`,
      '',
    ].join('\n'));
    try {
      let text = await a.metrics.text();
      expect(sample(text, 'airlock_store_max_bytes')).toBe(3 * 2 ** 30);
      expect(sample(text, 'airlock_tls_cert_expiry_timestamp_seconds')).toBe(first.notAfter);
      expect(first.notAfter - Date.now() / 1000).toBeGreaterThan(9 * 86400);
      expect(first.notAfter - Date.now() / 1000).toBeLessThan(11 * 86400);

      // The operator replaces the files in place and sends SIGHUP.
      const renewed = await selfSigned('renewed', 90);
      await copyFile(renewed.cert, first.cert);
      await copyFile(renewed.key, first.key);
      expect(await a.reload()).toEqual([]);
      text = await a.metrics.text();
      expect(sample(text, 'airlock_tls_cert_expiry_timestamp_seconds')).toBe(renewed.notAfter);
    } finally {
      await a.stop();
    }
  });

  it('exports neither without storage.maxSize and tls', async () => {
    const a = await startAirlock(`storage:\n  root: ${path.join(work, 'plain')}\nlog:\n  level: warn\n`);
    try {
      const text = await a.metrics.text();
      expect(sample(text, 'airlock_store_max_bytes')).toBeUndefined();
      expect(sample(text, 'airlock_tls_cert_expiry_timestamp_seconds')).toBeUndefined();
    } finally {
      await a.stop();
    }
  });
});
