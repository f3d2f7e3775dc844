/**
 * Compatibility with the real thing: Distribution writes a store (skopeo pushes to it), airlock
 * serves that same directory, and skopeo pulls every image back out of airlock with identical
 * digests; tags/list and _catalog agree with Distribution's answers page by page.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { generateImage, generateIndex, type GeneratedImage } from '../helpers/images.js';
import { rawRequest } from '../helpers/raw-http.js';
import { pullToLayout, skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';
import { digestBytes } from '../../src/oci/digest.js';

let work: string;
let root: string;
let dist: Distribution;
let airlock: RunningAirlock;
const images: Record<string, { repo: string; tag: string; img: GeneratedImage }> = {};
const MANY_TAGS = 125;
const CATALOG_MAX = 7;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-compat-'));
  root = path.join(work, 'store');
  dist = await startDistribution({ root, catalogMaxEntries: CATALOG_MAX });
  const gen = {
    ociMultiLayer: () => generateImage(path.join(work, 'l1'), { layers: 4, layerSize: 300_000, format: 'oci' }),
    dockerSchema2: () => generateImage(path.join(work, 'l2'), { layers: 3, layerSize: 200_000, format: 'docker' }),
    ociIndex: () => generateIndex(path.join(work, 'l3'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 2, layerSize: 100_000, format: 'oci' }),
    dockerList: () => generateIndex(path.join(work, 'l4'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm', variant: 'v7' }], layers: 2, layerSize: 100_000, format: 'docker' }),
  };
  const repos: Record<keyof typeof gen, string> = { ociMultiLayer: 'team/oci-app', dockerSchema2: 'library/alpine', ociIndex: 'ghcr.io/org/multi', dockerList: 'docker.io/x/list' };
  for (const k of Object.keys(gen) as Array<keyof typeof gen>) {
    const img = await gen[k]();
    await skopeoCopy(img.source, `docker://${dist.host}/${repos[k]}:v1`, { all: true });
    images[k] = { repo: repos[k], tag: 'v1', img };
  }
  // Many tags in one repository, written by Distribution itself (a manifest PUT per tag).
  const many = images.ociMultiLayer!;
  for (let i = 0; i < MANY_TAGS; i++) {
    const tag = `t${String(i).padStart(3, '0')}${i % 3 === 0 ? '-rc' : ''}${i % 10 === 0 ? '.Final' : ''}`;
    const r = await request(`${dist.url}/v2/${many.repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': many.img.mediaType }, body: many.img.manifestBytes });
    await r.body.dump();
    expect(r.statusCode).toBe(201);
  }
  // Names whose walk order differs from a plain string sort.
  for (const r of ['a/b', 'a-b', 'a.b', 'a0', 'a/c', 'a']) await skopeoCopy(images.dockerSchema2!.img.source, `docker://${dist.host}/${r}:v1`);
  airlock = await startAirlock(`storage:\n  root: ${root}\nlog:\n  level: warn\nhttp:\n  maxPageEntries: ${CATALOG_MAX}\n`);
}, 300_000);

afterAll(async () => {
  await airlock?.stop();
  await dist?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('airlock serves a store written by Distribution', () => {
  it.each(['ociMultiLayer', 'dockerSchema2', 'ociIndex', 'dockerList'])('skopeo pulls %s with identical digests', async (k) => {
    const { repo, tag, img } = images[k]!;
    const raw = await skopeoInspectRaw(`docker://${airlock.host}/${repo}:${tag}`);
    expect(raw.equals(img.manifestBytes)).toBe(true);
    expect(digestBytes(raw).toString()).toBe(img.manifestDigest);
    const dest = path.join(work, `pull-${k}`);
    const pulled = await pullToLayout(`docker://${airlock.host}/${repo}:${tag}`, dest, { all: true });
    expect(pulled.manifestDigest).toBe(img.manifestDigest);
    for (const b of img.blobs) expect(pulled.blobs).toContain(b.digest);
    for (const c of img.children) expect(pulled.blobs).toContain(c.manifestDigest);
  });

  it('serves each child of an index by digest, byte for byte', async () => {
    for (const k of ['ociIndex', 'dockerList']) {
      const { repo, img } = images[k]!;
      for (const c of img.children) {
        const r = await request(`${airlock.url}/v2/${repo}/manifests/${c.manifestDigest}`, { headers: { accept: c.mediaType } });
        const body = Buffer.from(await r.body.arrayBuffer());
        expect(r.statusCode).toBe(200);
        expect(r.headers['content-type']).toBe(c.mediaType);
        expect(r.headers['docker-content-digest']).toBe(c.manifestDigest);
        expect(body.equals(c.manifestBytes)).toBe(true);
      }
    }
  });

  it('answers manifest GET and HEAD with the headers Distribution sends, and 304 on If-None-Match', async () => {
    const { repo, tag, img } = images.dockerSchema2!;
    for (const url of [dist.url, airlock.url]) {
      const head = await request(`${url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: img.mediaType } });
      await head.body.dump();
      expect(head.statusCode).toBe(200);
      expect(head.headers['docker-content-digest']).toBe(img.manifestDigest);
      expect(head.headers['content-type']).toBe(img.mediaType);
      expect(Number(head.headers['content-length'])).toBe(img.manifestBytes.length);
      expect(head.headers.etag).toBe(`"${img.manifestDigest}"`);
      const cond = await request(`${url}/v2/${repo}/manifests/${tag}`, { headers: { accept: img.mediaType, 'if-none-match': `"${img.manifestDigest}"` } });
      await cond.body.dump();
      expect(cond.statusCode).toBe(304);
    }
  });

  it('refuses an OCI manifest to a client that does not accept OCI, like Distribution', async () => {
    const { repo, tag } = images.ociMultiLayer!;
    for (const url of [dist.url, airlock.url]) {
      const r = await request(`${url}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
      const body = (await r.body.json()) as { errors: Array<{ code: string }> };
      expect(r.statusCode).toBe(404);
      expect(body.errors[0]!.code).toBe('MANIFEST_UNKNOWN');
    }
  });

  it('serves blobs with ranges, and only to repositories that link them', async () => {
    const { repo, img } = images.ociMultiLayer!;
    const layer = img.blobs[1]!;
    const full = await request(`${airlock.url}/v2/${repo}/blobs/${layer.digest}`);
    const bytes = Buffer.from(await full.body.arrayBuffer());
    expect(full.statusCode).toBe(200);
    expect(digestBytes(bytes).toString()).toBe(layer.digest);
    expect(full.headers['docker-content-digest']).toBe(layer.digest);
    expect(full.headers['accept-ranges']).toBe('bytes');
    const part = await request(`${airlock.url}/v2/${repo}/blobs/${layer.digest}`, { headers: { range: 'bytes=100-1099' } });
    const partBytes = Buffer.from(await part.body.arrayBuffer());
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-1099/${layer.size}`);
    expect(partBytes.equals(bytes.subarray(100, 1100))).toBe(true);
    const bad = await request(`${airlock.url}/v2/${repo}/blobs/${layer.digest}`, { headers: { range: `bytes=${layer.size}-` } });
    await bad.body.dump();
    expect(bad.statusCode).toBe(416);
    expect(bad.headers['content-range']).toBe(`bytes */${layer.size}`);
    const other = await request(`${airlock.url}/v2/library/alpine/blobs/${layer.digest}`);
    const err = (await other.body.json()) as { errors: Array<{ code: string }> };
    expect(other.statusCode).toBe(404);
    expect(err.errors[0]!.code).toBe('BLOB_UNKNOWN');
  });

  it('lists the same tags as Distribution (Distribution does not sort them; airlock does)', async () => {
    const { repo } = images.ociMultiLayer!;
    const theirs = (await (await request(`${dist.url}/v2/${repo}/tags/list`)).body.json()) as { tags: string[] };
    const ours = (await (await request(`${airlock.url}/v2/${repo}/tags/list`)).body.json()) as { name: string; tags: string[] };
    expect(ours.tags.length).toBe(MANY_TAGS + 1);
    expect(ours.tags).toEqual([...theirs.tags].sort());
    expect(ours.name).toBe(repo);
  });

  it('paginates tags/list with n and last and a Link header, covering every tag once', async () => {
    const { repo } = images.ociMultiLayer!;
    const seen: string[] = [];
    let url: string | undefined = `/v2/${repo}/tags/list?n=7`;
    let pages = 0;
    while (url && pages < 100) {
      const r = await request(`${airlock.url}${url}`);
      const body = (await r.body.json()) as { tags: string[] };
      expect(body.tags.length).toBeLessThanOrEqual(7);
      seen.push(...body.tags);
      const link = r.headers.link as string | undefined;
      url = link ? /<([^>]+)>; rel="next"/.exec(link)?.[1] : undefined;
      pages++;
    }
    expect(pages).toBe(Math.ceil((MANY_TAGS + 1) / 7));
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(MANY_TAGS + 1);
  });

  it('answers _catalog exactly as Distribution does, page by page', async () => {
    for (const n of [undefined, 1, 2, 3, CATALOG_MAX]) {
      const pages: Record<string, Array<{ body: unknown; link: unknown }>> = {};
      for (const [who, base] of [['distribution', dist.url], ['airlock', airlock.url]] as const) {
        pages[who] = [];
        let url: string | undefined = n === undefined ? '/v2/_catalog' : `/v2/_catalog?n=${n}`;
        for (let i = 0; url && i < 50; i++) {
          const r: Awaited<ReturnType<typeof request>> = await request(`${base}${url}`);
          expect(r.statusCode).toBe(200);
          const body: unknown = await r.body.json();
          pages[who]!.push({ body, link: r.headers.link });
          url = r.headers.link ? /<([^>]+)>; rel="next"/.exec(r.headers.link as string)?.[1] : undefined;
        }
      }
      expect(pages.airlock).toEqual(pages.distribution);
    }
    for (const q of ['n=0', 'n=2&last=a0', 'n=2&last=a%2Fbb', 'n=3&last=a.b', 'last=zzz', 'n=2&last=a%2F']) {
      const [a, d] = await Promise.all([request(`${airlock.url}/v2/_catalog?${q}`), request(`${dist.url}/v2/_catalog?${q}`)]);
      expect([await a.body.json(), a.headers.link]).toEqual([await d.body.json(), d.headers.link]);
    }
  });

  it('answers hostile names and references with 4xx OCI errors, never 5xx, never outside the store', async () => {
    const cases: Array<[string, number, string]> = [
      ['/v2/%2e%2e/%2e%2e/etc/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/a%2fb/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/Team/app/manifests/latest', 400, 'NAME_INVALID'],
      // A reference that is no tag is a manifest nobody has (the OCI conformance suite, Distribution).
      ['/v2/a/manifests/..%2f..%2fpasswd', 404, 'MANIFEST_UNKNOWN'],
      ['/v2/a/manifests/sha256:abc', 404, 'MANIFEST_UNKNOWN'],
      ['/v2/a/blobs/md5:00', 400, 'DIGEST_INVALID'],
      [`/v2/a/blobs/sha256:${'0'.repeat(64)}`, 404, 'BLOB_UNKNOWN'],
      ['/v2/nope/tags/list', 404, 'NAME_UNKNOWN'],
      ['/v2/a/manifests/nope', 404, 'MANIFEST_UNKNOWN'],
      ['/v2/_catalog?n=abc', 400, 'PAGINATION_NUMBER_INVALID'],
      [`/v2/${'a'.repeat(300)}/tags/list`, 400, 'NAME_INVALID'],
    ];
    for (const [url, status, code] of cases) {
      const r = await rawRequest(airlock.url, url);
      const body = JSON.parse(r.body.toString()) as { errors: Array<{ code: string }> };
      expect([url, r.status, body.errors[0]?.code]).toEqual([url, status, code]);
    }
    // An empty object is no manifest: refused, and no tag appears.
    const put = await request(`${airlock.url}/v2/a/manifests/x`, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    expect(put.statusCode).toBe(400);
    expect(((await put.body.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('MANIFEST_INVALID');
    expect((await request(`${airlock.url}/v2/a/manifests/x`)).statusCode).toBe(404);
  });
});
