/**
 * What the official OCI conformance suite (oci-conformance.test.ts) cannot see, against airlock as
 * a plain registry: where pushes and deletes land in the standard layout on disk, the refusals
 * the suite never sends (wrong digests, missing blobs, oversized or invalid manifests, invalid
 * references on PUT and DELETE), sweeping abandoned uploads, and deletes when they are disabled.
 * The protocol's happy paths and status codes are the suite's to check.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { blobFile, exists } from '../helpers/store-files.js';

let work: string;
let root: string;
let reg: RunningAirlock;

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blobPath = (d: string) => blobFile(root, d);

async function call(method: string, p: string, opts: { headers?: Record<string, string>; body?: Buffer | string } = {}) {
  const r = await request(`${reg.url}${p}`, { method: method as 'GET', headers: opts.headers, body: opts.body });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers: r.headers, body, json: () => JSON.parse(body.toString()) as { errors?: Array<{ code: string; message: string }> } & Record<string, unknown> };
}

const code = (r: { json(): { errors?: Array<{ code: string }> } }) => r.json().errors?.[0]?.code;

function imageManifest(config: { d: string; size: number }, layers: Array<{ d: string; size: number }>, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.d, size: config.size },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.d, size: l.size })),
    ...extra,
  }));
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const repo = 'conformance/app';
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
const layer = randomBytes(300_000);
let manifest: Buffer;
let manifestDigest: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-conformance-'));
  root = path.join(work, 'store');
  reg = await startAirlock(`storage:\n  root: ${root}\n  delete:\n    enabled: true\nlog:\n  level: warn\n`);
});

afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A file under a repository's folder in the layout. */
const repoFile = (name: string, ...parts: string[]) => path.join(root, 'docker/registry/v2/repositories', name, ...parts);
const hex = (d: string) => d.slice('sha256:'.length);
const link = (p: string) => readFile(p, 'utf8');

describe('push: what lands on disk', () => {
  it('blobs pushed in two requests, in one POST or in chunks land in blobs/ with a layer link, and no session is left', async () => {
    const post = await call('POST', `/v2/${repo}/blobs/uploads/`);
    expect(post.status).toBe(202);
    expect(post.headers['docker-upload-uuid']).toBe(String(post.headers.location).split('/').pop());
    const d = sha(config);
    const put = await call('PUT', `${post.headers.location as string}?digest=${d}`, { headers: { 'content-type': 'application/octet-stream' }, body: config });
    expect(put.status).toBe(201);
    expect(put.headers['docker-content-digest']).toBe(d);

    const one = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${sha(layer)}`, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(layer.length) }, body: layer });
    expect(one.status).toBe(201);

    const data = randomBytes(1_000_000);
    const loc = (await call('POST', `/v2/${repo}/blobs/uploads/`)).headers.location as string;
    const chunks = [data.subarray(0, 400_000), data.subarray(400_000, 800_000), data.subarray(800_000)];
    let offset = 0;
    for (const c of chunks.slice(0, 2)) {
      const r = await call('PATCH', loc, { headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + c.length - 1}`, 'content-length': String(c.length) }, body: c });
      expect(r.status).toBe(202);
      offset += c.length;
    }
    const last = await call('PUT', `${loc}?digest=${sha(data)}`, { headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${data.length - 1}`, 'content-length': String(chunks[2]!.length) }, body: chunks[2]! });
    expect(last.status).toBe(201);

    for (const bytes of [config, layer, data]) {
      expect((await readFile(blobPath(sha(bytes)))).equals(bytes)).toBe(true);
      expect(await link(repoFile(repo, '_layers/sha256', hex(sha(bytes)), 'link'))).toBe(sha(bytes));
    }
    expect(await readdir(repoFile(repo, '_uploads')).catch(() => [])).toEqual([]);
  });

  it('a wrong digest is DIGEST_INVALID and stores nothing; a cancelled upload is gone', async () => {
    const data = randomBytes(10_000);
    const wrong = sha(Buffer.from('something else'));
    const r = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${wrong}`, { headers: { 'content-type': 'application/octet-stream' }, body: data });
    expect(r.status).toBe(400);
    expect(code(r)).toBe('DIGEST_INVALID');
    expect(await exists(blobPath(sha(data)))).toBe(false);
    expect(await exists(blobPath(wrong))).toBe(false);

    const post = await call('POST', `/v2/${repo}/blobs/uploads/`);
    const loc = post.headers.location as string;
    expect((await call('DELETE', loc)).status).toBe(204);
    expect(await exists(repoFile(repo, '_uploads', loc.split('/').pop()!))).toBe(false);
    const gone = await call('GET', loc);
    expect(gone.status).toBe(404);
    expect(code(gone)).toBe('BLOB_UPLOAD_UNKNOWN');
    const bogus = await call('PATCH', `/v2/${repo}/blobs/uploads/not-a-session`, { headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
    expect(bogus.status).toBe(404);
    expect(code(bogus)).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('an upload left untouched for push.abandonAfter is swept; a live one is not', async () => {
    const post = await call('POST', `/v2/${repo}/blobs/uploads/`);
    const loc = post.headers.location as string;
    const id = loc.split('/').pop()!;
    await call('PATCH', loc, { headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(1000) });
    const dir = repoFile(repo, '_uploads', id);
    expect(await exists(path.join(dir, 'data'))).toBe(true);
    expect(await reg.push.sweepUploads(Date.now())).toBe(0);
    expect((await call('GET', loc)).status).toBe(204);
    expect(await reg.push.sweepUploads(Date.now() + 25 * 3_600_000)).toBeGreaterThanOrEqual(1);
    expect(await exists(dir)).toBe(false);
    expect(code(await call('GET', loc))).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('a cross-repository mount is a layer link, not a copy; a source that does not hold the blob gives a session', async () => {
    const m = await call('POST', `/v2/other/app/blobs/uploads/?mount=${sha(layer)}&from=${repo}`);
    expect(m.status).toBe(201);
    expect(await link(repoFile('other/app', '_layers/sha256', hex(sha(layer)), 'link'))).toBe(sha(layer));
    expect(await readdir(repoFile('other/app', '_uploads')).catch(() => [])).toEqual([]);
    // The blob exists, but not in the named source: a session, not a mount.
    const elsewhere = await call('POST', `/v2/third/app/blobs/uploads/?mount=${sha(layer)}&from=nobody/here`);
    expect(elsewhere.status).toBe(202);
    expect(await exists(repoFile('third/app', '_layers/sha256', hex(sha(layer)), 'link'))).toBe(false);
  });

  it('a manifest is stored as a blob with revision and tag links; refused pushes store nothing', async () => {
    manifest = imageManifest({ d: sha(config), size: config.length }, [{ d: sha(layer), size: layer.length }]);
    manifestDigest = sha(manifest);
    const put = await call('PUT', `/v2/${repo}/manifests/v1`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(put.status).toBe(201);
    expect(put.headers['docker-content-digest']).toBe(manifestDigest);
    expect((await readFile(blobPath(manifestDigest))).equals(manifest)).toBe(true);
    expect(await link(repoFile(repo, '_manifests/revisions/sha256', hex(manifestDigest), 'link'))).toBe(manifestDigest);
    expect(await link(repoFile(repo, '_manifests/tags/v1/current/link'))).toBe(manifestDigest);
    expect(await link(repoFile(repo, '_manifests/tags/v1/index/sha256', hex(manifestDigest), 'link'))).toBe(manifestDigest);

    const missing = imageManifest({ d: sha(config), size: config.length }, [{ d: sha(Buffer.from('absent')), size: 6 }]);
    const r1 = await call('PUT', `/v2/${repo}/manifests/broken`, { headers: { 'content-type': OCI_MANIFEST }, body: missing });
    expect(r1.status).toBe(404);
    expect(code(r1)).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(await exists(blobPath(sha(missing)))).toBe(false);
    const r2 = await call('PUT', `/v2/${repo}/manifests/broken`, { headers: { 'content-type': OCI_MANIFEST }, body: '{"schemaVersion": 2,' });
    expect(r2.status).toBe(400);
    expect(code(r2)).toBe('MANIFEST_INVALID');
    const r3 = await call('PUT', `/v2/${repo}/manifests/${sha(Buffer.from('x'))}`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(r3.status).toBe(400);
    expect(code(r3)).toBe('DIGEST_INVALID');
    const big = Buffer.alloc(5 * 2 ** 20, 0x20);
    const r5 = await call('PUT', `/v2/${repo}/manifests/huge`, { headers: { 'content-type': OCI_MANIFEST }, body: big });
    expect(r5.status).toBe(413);
    expect(r5.json().errors?.[0]?.message).toMatch(/maxManifestSize/);
    expect(await readdir(repoFile(repo, '_manifests/tags'))).toEqual(['v1']);
    expect(await readdir(repoFile(repo, '_manifests/revisions/sha256'))).toEqual([hex(manifestDigest)]);
  });

  it('a reference that is neither a tag nor a digest: GET, HEAD and DELETE are MANIFEST_UNKNOWN (404, as Distribution answers), PUT is refused', async () => {
    for (const ref of ['.INVALID_MANIFEST_NAME', '-bad', 'x'.repeat(129), 'sha256:short', 'bad:tag']) {
      for (const method of ['GET', 'HEAD', 'DELETE']) {
        const r = await call(method, `/v2/${repo}/manifests/${encodeURIComponent(ref)}`);
        expect(r.status, `${method} ${ref}`).toBe(404);
        if (method !== 'HEAD') expect(code(r), `${method} ${ref}`).toBe('MANIFEST_UNKNOWN');
      }
    }
    const tag = await call('PUT', `/v2/${repo}/manifests/.INVALID_MANIFEST_NAME`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(tag.status).toBe(400);
    expect(code(tag)).toBe('TAG_INVALID');
    const digest = await call('PUT', `/v2/${repo}/manifests/bad:tag`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(digest.status).toBe(400);
    expect(code(digest)).toBe('DIGEST_INVALID');
    expect(await readdir(repoFile(repo, '_manifests/tags'))).toEqual(['v1']);
    // Referrers name their subject by digest only.
    expect((await call('GET', `/v2/${repo}/referrers/sha256:short`)).status).toBe(400);
  });
});

describe('content management: what deletes leave on disk', () => {
  it('with storage.delete.enabled false, every delete is 405 UNSUPPORTED and nothing changes', async () => {
    const ro = await startAirlock(`storage:\n  root: ${root}\nlog:\n  level: warn\n`);
    try {
      for (const p of [`/v2/${repo}/manifests/v1`, `/v2/${repo}/manifests/${manifestDigest}`, `/v2/${repo}/blobs/${sha(layer)}`]) {
        const r = await request(`${ro.url}${p}`, { method: 'DELETE' });
        const body = (await r.body.json()) as { errors: Array<{ code: string; message: string }> };
        expect(r.statusCode).toBe(405);
        expect(body.errors[0]!.code).toBe('UNSUPPORTED');
        expect(body.errors[0]!.message).toMatch(/storage\.delete\.enabled/);
      }
      expect(await link(repoFile(repo, '_manifests/tags/v1/current/link'))).toBe(manifestDigest);
      expect(await exists(repoFile(repo, '_manifests/revisions/sha256', hex(manifestDigest), 'link'))).toBe(true);
      expect(await exists(repoFile(repo, '_layers/sha256', hex(sha(layer)), 'link'))).toBe(true);
    } finally {
      await ro.stop();
    }
  });

  it('a tag delete removes the tag; a manifest delete its revision and every tag on it; a blob delete the layer link; the bytes stay for gc', async () => {
    expect((await call('PUT', `/v2/${repo}/manifests/v2`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest })).status).toBe(201);
    expect((await call('PUT', `/v2/${repo}/manifests/v3`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest })).status).toBe(201);
    expect((await call('DELETE', `/v2/${repo}/manifests/v3`)).status).toBe(202);
    expect(await exists(repoFile(repo, '_manifests/tags/v3'))).toBe(false);
    expect(await exists(repoFile(repo, '_manifests/revisions/sha256', hex(manifestDigest), 'link'))).toBe(true);

    expect((await call('DELETE', `/v2/${repo}/manifests/${manifestDigest}`)).status).toBe(202);
    expect(await exists(repoFile(repo, '_manifests/revisions/sha256', hex(manifestDigest), 'link'))).toBe(false);
    expect(await readdir(repoFile(repo, '_manifests/tags')).catch(() => [])).toEqual([]);
    const gone = await call('GET', `/v2/${repo}/manifests/v1`);
    expect(gone.status).toBe(404);
    expect(code(gone)).toBe('MANIFEST_UNKNOWN');
    expect(await exists(blobPath(manifestDigest))).toBe(true);

    expect((await call('DELETE', `/v2/${repo}/blobs/${sha(layer)}`)).status).toBe(202);
    expect(await exists(repoFile(repo, '_layers/sha256', hex(sha(layer)), 'link'))).toBe(false);
    expect(await exists(blobPath(sha(layer)))).toBe(true);
    const b = await call('GET', `/v2/${repo}/blobs/${sha(layer)}`);
    expect(b.status).toBe(404);
    expect(code(b)).toBe('BLOB_UNKNOWN');
    // Another repository that mounted it keeps it.
    expect((await call('GET', `/v2/other/app/blobs/${sha(layer)}`)).status).toBe(200);
    expect(code(await call('DELETE', `/v2/${repo}/blobs/${sha(layer)}`))).toBe('BLOB_UNKNOWN');
  });
});
