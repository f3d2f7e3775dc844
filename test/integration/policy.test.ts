/**
 * Allow and deny lists per upstream (README "Allow and deny lists") with real parts: Distribution
 * with token auth upstream behind the counting proxy, airlock in-process, skopeo as the client,
 * and the `airlock` command for freeze and import. What is denied is never asked of the upstream.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { runAirlock } from '../helpers/cli.js';
import { snapshot } from '../helpers/store-files.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { pullToLayout } from '../helpers/skopeo.js';
import { READER, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

let work: string;
let up: TestUpstream;
let a: RunningAirlock;
const img: Record<string, GeneratedImage> = {};
let n = 0;

const OCI = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const NGINX_RULE = 'upstreams.docker.io.deny "library/nginx"';

interface Lists { deny?: string[]; allow?: string[]; mode?: 'enforce' | 'report'; extra?: string[] }

/** A mirror.yml: docker.io and ghcr.io on the test upstream, with allow and deny lists. */
function yaml(root: string, l: Lists): string {
  return [
    `storage:\n  root: ${root}`,
    'log:\n  level: info',
    'upstreams:',
    '  docker.io:',
    `    url: ${up.proxy.url}`,
    `    username: ${READER.user}`,
    `    password: ${READER.password}`,
    ...(l.deny ? [`    deny: ${JSON.stringify(l.deny)}`] : []),
    '  ghcr.io:',
    `    url: ${up.proxy.url}`,
    ...(l.allow ? [`    allow: ${JSON.stringify(l.allow)}`] : []),
    ...(l.mode ? [`policy:\n  mode: ${l.mode}`] : []),
    ...(l.extra ?? []),
  ].join('\n');
}

const LISTS: Lists = {
  deny: ['library/nginx', 'library/alpine:3.19*'],
  allow: ['org/tool'],
  extra: ['prefetch:', '  images:', '    - name: library/alpine', '      tags: ["3.*"]', '    - name: library/nginx', '    - alpine:3.19.1', '    - ghcr.io/org/other:1.0'],
};

async function get(p: string, method: 'GET' | 'HEAD' = 'GET'): Promise<{ status: number; body: string; digest?: string }> {
  const r = await request(`${a.url}${p}`, { method, headers: { accept: OCI } });
  const body = method === 'HEAD' ? '' : await r.body.text();
  if (method === 'HEAD') await r.body.dump();
  return { status: r.statusCode, body, digest: r.headers['docker-content-digest'] as string | undefined };
}

function upstreamSaw(fragment: string): string[] {
  return up.proxy.records.filter((r) => r.path.includes(fragment)).map((r) => `${r.method} ${r.path}`);
}

/** airlock_policy_denials_total{upstream,mode}. */
async function denials(mode: string, upstream: string): Promise<number> {
  const m = await a.metrics.policyDenials.get();
  return m.values.find((v) => v.labels.upstream === upstream && v.labels.mode === mode)?.value ?? 0;
}

const root = () => path.join(work, 'store');

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-policy-'));
  up = await startTestUpstream();
  img.nginx = await generateImage(path.join(work, 'g-nginx'), { layers: 2, layerSize: 100_000, format: 'oci' });
  img.alpine = await generateImage(path.join(work, 'g-alpine'), { layers: 1, layerSize: 100_000, format: 'oci' });
  img.old = await generateImage(path.join(work, 'g-old'), { layers: 1, layerSize: 100_000, format: 'oci' });
  img.tool = await generateImage(path.join(work, 'g-tool'), { layers: 1, layerSize: 100_000, format: 'docker' });
  await up.push(img.nginx, 'library/nginx', '1.27');
  await up.push(img.alpine, 'library/alpine', '3.20');
  await up.push(img.old, 'library/alpine', '3.19.1');
  await up.push(img.tool, 'org/tool', '1.4');
  await up.push(img.tool, 'org/other', '1.0');
  a = await startAirlock(yaml(root(), LISTS));
}, 300_000);

afterAll(async () => {
  await a?.stop();
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('allow and deny lists per upstream', () => {
  it('refuses a denied repository in every spelling, by tag, digest, blob and tags/list, naming the rule, and never asks the upstream', async () => {
    up.proxy.reset();
    const layer = img.nginx!.blobs.at(-1)!.digest;
    const paths = [
      '/v2/nginx/manifests/1.27',
      '/v2/library/nginx/manifests/1.27',
      '/v2/docker.io/library/nginx/manifests/1.27',
      '/v2/library/nginx/manifests/1.27?ns=docker.io',
      '/v2/nginx/manifests/1.27?ns=docker.io',
      '/v2/docker.io/library/nginx/manifests/1.27?ns=docker.io',
      `/v2/library/nginx/manifests/${img.nginx!.manifestDigest}`,
      `/v2/nginx/blobs/${layer}`,
      '/v2/library/nginx/tags/list',
    ];
    for (const p of paths) {
      const r = await get(p);
      expect(r.status, p).toBe(403);
      const e = (JSON.parse(r.body) as { errors: Array<{ code: string; message: string }> }).errors[0]!;
      expect(e.code, p).toBe('DENIED');
      expect(e.message, p).toContain(NGINX_RULE);
    }
    expect((await get('/v2/library/nginx/manifests/1.27', 'HEAD')).status).toBe(403);
    expect((await get(`/v2/library/nginx/blobs/${layer}`, 'HEAD')).status).toBe(403);
    await expect(pullToLayout(`docker://${a.host}/nginx:1.27`, path.join(work, `pull-${n++}`))).rejects.toThrow(/denied/i);
    expect(upstreamSaw('nginx')).toEqual([]);
    expect(a.logs.some((l) => l.msg === 'denied by policy' && l.rule === 'library/nginx')).toBe(true);
    expect(await denials('enforce', 'docker.io')).toBeGreaterThanOrEqual(paths.length + 2);
  });

  it('serves what the lists allow with the right digest; tag rules deny those tags only, and an allow list everything else', async () => {
    up.proxy.reset();
    expect((await pullToLayout(`docker://${a.host}/alpine:3.20`, path.join(work, `pull-${n++}`))).manifestDigest).toBe(img.alpine!.manifestDigest);
    expect((await pullToLayout(`docker://${a.host}/ghcr.io/org/tool:1.4`, path.join(work, `pull-${n++}`))).manifestDigest).toBe(img.tool!.manifestDigest);

    const tag = await get('/v2/alpine/manifests/3.19.1');
    expect(tag.status).toBe(403);
    expect(tag.body).toContain('docker.io library/alpine:3.19.1 is denied by upstreams.docker.io.deny \\"library/alpine:3.19*\\"');
    expect(upstreamSaw('/manifests/3.19.1')).toEqual([]);
    // A digest names no tag: tag rules do not deny it (README "Allow and deny lists").
    const byDigest = await get(`/v2/library/alpine/manifests/${img.old!.manifestDigest}`);
    expect(byDigest.status).toBe(200);
    expect(byDigest.digest).toBe(img.old!.manifestDigest);

    for (const p of ['/v2/ghcr.io/org/other/manifests/1.0', '/v2/org/other/manifests/1.0?ns=ghcr.io', '/v2/ghcr.io/org/other/tags/list']) {
      const r = await get(p);
      expect(r.status, p).toBe(403);
      expect(r.body, p).toContain('ghcr.io org/other');
      expect(r.body, p).toContain('no entry of upstreams.ghcr.io.allow matches it');
    }
    expect(upstreamSaw('org/other')).toEqual([]);
    expect(await denials('enforce', 'ghcr.io')).toBe(3);
  });

  it('prefetch reports a denied entry as failed with the rule and fetches nothing of it; a pattern leaves denied tags out', async () => {
    up.proxy.reset();
    const r = await a.prefetch();
    const by = new Map(r.results.map((x) => [x.image, x]));
    expect(by.get('library/alpine:3.20')?.outcome).toBe('ok');
    expect(by.has('library/alpine:3.19.1')).toBe(false);
    expect(by.get('library/nginx')).toMatchObject({ outcome: 'failed', error: expect.stringContaining(NGINX_RULE) as unknown });
    expect(by.get('alpine:3.19.1')).toMatchObject({ outcome: 'failed', error: expect.stringContaining('upstreams.docker.io.deny "library/alpine:3.19*"') as unknown });
    expect(by.get('ghcr.io/org/other:1.0')).toMatchObject({ outcome: 'failed', error: expect.stringContaining('upstreams.ghcr.io.allow') as unknown });
    expect(r.results).toHaveLength(4);
    expect([...upstreamSaw('nginx'), ...upstreamSaw('org/other'), ...upstreamSaw('/manifests/3.19.1')]).toEqual([]);
    expect(up.proxy.blobGets()).toBe(0);
  });

  it('a cached blob of a denied repository is no mount source for a local name', async () => {
    const layer = img.nginx!.blobs.at(-1)!.digest;
    const push = ['push:\n  repositories: ["team/**"]'];
    const mount = async (m: RunningAirlock) => {
      const r = await request(`${m.url}/v2/team/app/blobs/uploads/?mount=${layer}&from=nginx`, { method: 'POST' });
      await r.body.dump();
      return r.statusCode;
    };
    // While nginx is allowed, its layer is filled, and mounting it is a link (201).
    const open = await startAirlock(yaml(root(), { ...LISTS, deny: [], extra: push }));
    try {
      const blob = await request(`${open.url}/v2/nginx/blobs/${layer}`);
      await blob.body.dump();
      expect(blob.statusCode).toBe(200);
      // The fill links the layer once it is committed, a moment after the last byte is sent.
      const link = path.join(root(), 'docker/registry/v2/repositories/library/nginx/_layers/sha256', layer.slice(7), 'link');
      for (let i = 0; i < 100 && !(await readFile(link).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 20));
      expect(await mount(open)).toBe(201);
    } finally {
      await open.stop();
    }
    // Denied: the same request opens an ordinary upload session instead (202).
    const closed = await startAirlock(yaml(root(), { ...LISTS, extra: push }));
    try {
      expect(await mount(closed)).toBe(202);
    } finally {
      await closed.stop();
    }
  });

  it('a reload (SIGHUP) changes the outcome at once, for cached content too, and keeps the upstream clients', async () => {
    const client = a.upstreams.get('docker.io');
    const cachedLayer = img.alpine!.blobs.at(-1)!.digest;
    await a.reload(parseConfig(yaml(root(), { ...LISTS, deny: ['library/alpine'] }), { baseDir: work, env: {} }));
    expect(a.upstreams.get('docker.io')).toBe(client);
    up.proxy.reset();
    for (const p of ['/v2/alpine/manifests/3.20', `/v2/library/alpine/blobs/${cachedLayer}`]) {
      const r = await get(p);
      expect(r.status, p).toBe(403);
      expect(r.body, p).toContain('upstreams.docker.io.deny \\"library/alpine\\"');
    }
    expect(up.proxy.records).toEqual([]);
    const nginx = await get('/v2/nginx/manifests/1.27');
    expect(nginx.status).toBe(200);
    expect(nginx.digest).toBe(img.nginx!.manifestDigest);

    await a.reload(parseConfig(yaml(root(), LISTS), { baseDir: work, env: {} }));
    expect((await get('/v2/alpine/manifests/3.20')).digest).toBe(img.alpine!.manifestDigest);
    expect((await get('/v2/nginx/manifests/1.27')).status).toBe(403);
  });

  it('report mode serves and fetches what it would deny, with one warn line naming the rule and a count', async () => {
    await a.reload(parseConfig(yaml(root(), { ...LISTS, mode: 'report' }), { baseDir: work, env: {} }));
    up.proxy.reset();
    const before = await denials('report', 'ghcr.io');
    const pulled = await pullToLayout(`docker://${a.host}/ghcr.io/org/other:1.0`, path.join(work, `pull-${n++}`));
    expect(pulled.manifestDigest).toBe(img.tool!.manifestDigest);
    expect(upstreamSaw('org/other').length).toBeGreaterThan(0);
    const nginx = await get('/v2/nginx/manifests/1.27');
    expect(nginx.status).toBe(200);
    const warns = a.logs.filter((l) => l.level === 'warn' && typeof l.msg === 'string' && l.msg.startsWith('policy (report mode) would deny'));
    expect(warns.some((l) => (l.msg as string).includes(NGINX_RULE))).toBe(true);
    expect(warns.some((l) => (l.msg as string).includes('ghcr.io org/other:1.0 is denied: no entry of upstreams.ghcr.io.allow'))).toBe(true);
    expect(await denials('report', 'ghcr.io')).toBeGreaterThan(before);
    expect(await denials('report', 'docker.io')).toBeGreaterThanOrEqual(1);
    await a.reload(parseConfig(yaml(root(), LISTS), { baseDir: work, env: {} }));
  });

  it('import refuses a bundle carrying a denied image as a whole, naming it, and --force imports it', async () => {
    // The connected side: a store holding nginx and alpine, frozen by the command.
    const connected = path.join(work, 'connected.yml');
    await writeFile(connected, yaml(root(), {}));
    const prefetched = await runAirlock(['prefetch', '--config', connected, 'nginx:1.27'], 120_000);
    expect(prefetched.code).toBe(0);
    const bundle = path.join(work, 'b.tar');
    const frozen = await runAirlock(['freeze', '--config', connected, '--out', bundle, 'nginx:1.27', 'alpine:3.20'], 120_000);
    expect(frozen.stderr).not.toMatch(/^airlock:/m);
    expect(frozen.code).toBe(0);

    const site = path.join(work, 'site');
    const siteConfig = async (l: Lists) => {
      const f = path.join(work, `site-${n++}.yml`);
      await writeFile(f, yaml(site, l));
      return f;
    };
    const enforced = await siteConfig({ deny: ['library/nginx'] });
    const before = await snapshot(site);
    const refused = await runAirlock(['import', '--config', enforced, bundle], 120_000);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/airlock: .*b\.tar carries images .* nothing was imported: library\/nginx: docker\.io library\/nginx is denied by upstreams\.docker\.io\.deny "library\/nginx" \(airlock import --force imports it anyway\)/);
    expect(await snapshot(site)).toEqual(before);
    // Tag rules judge the bundle's tags.
    const byTag = await runAirlock(['import', '--config', await siteConfig({ deny: ['library/alpine:>=3.20'] }), bundle], 120_000);
    expect(byTag.code).toBe(2);
    expect(byTag.stderr).toContain('library/alpine:3.20: docker.io library/alpine:3.20 is denied by upstreams.docker.io.deny "library/alpine:>=3.20"');
    expect(await snapshot(site)).toEqual(before);

    const forced = await runAirlock(['import', '--force', '--config', enforced, bundle], 120_000);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toContain(`airlock: warning: imported although denied (--force): library/nginx: docker.io library/nginx is denied by ${NGINX_RULE}`);
    const tagLink = path.join(site, 'docker/registry/v2/repositories/library/nginx/_manifests/tags/1.27/current/link');
    expect(await readFile(tagLink, 'utf8')).toBe(img.nginx!.manifestDigest);

    // Imported names are local: the upstream lists do not govern them (and they never go upstream).
    const served = await startAirlock(await readFile(enforced, 'utf8'));
    try {
      up.proxy.reset();
      const r = await request(`${served.url}/v2/nginx/manifests/1.27`, { headers: { accept: OCI } });
      await r.body.dump();
      expect(r.statusCode).toBe(200);
      expect(r.headers['docker-content-digest']).toBe(img.nginx!.manifestDigest);
      expect(upstreamSaw('nginx')).toEqual([]);
    } finally {
      await served.stop();
    }
  });
});
