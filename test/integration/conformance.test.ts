/**
 * The four workflows of the OCI distribution-spec conformance suite (pull, push, content
 * discovery, content management), request by request, against airlock as a plain registry.
 * Each expectation the suite checks is checked here, plus what lands on disk.
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

/** A blob pushed with POST + PUT (the suite's "monolithic upload in two requests"). */
async function pushBlob(repo: string, data: Buffer): Promise<string> {
  const d = sha(data);
  const post = await call('POST', `/v2/${repo}/blobs/uploads/`);
  expect(post.status).toBe(202);
  const put = await call('PUT', `${post.headers.location as string}?digest=${d}`, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) }, body: data });
  expect(put.status).toBe(201);
  return d;
}

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

describe('push', () => {
  it('monolithic: POST then PUT ?digest=, and a single POST ?digest=', async () => {
    const post = await call('POST', `/v2/${repo}/blobs/uploads/`);
    expect(post.status).toBe(202);
    expect(post.headers.location).toMatch(new RegExp(`^/v2/${repo}/blobs/uploads/[0-9a-f-]{36}$`));
    expect(post.headers['docker-upload-uuid']).toBe(String(post.headers.location).split('/').pop());
    const d = sha(config);
    const put = await call('PUT', `${post.headers.location as string}?digest=${d}`, { headers: { 'content-type': 'application/octet-stream' }, body: config });
    expect(put.status).toBe(201);
    expect(put.headers.location).toBe(`/v2/${repo}/blobs/${d}`);
    expect(put.headers['docker-content-digest']).toBe(d);
    expect(await readFile(blobPath(d))).toEqual(config);

    const one = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${sha(layer)}`, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(layer.length) }, body: layer });
    expect(one.status).toBe(201);
    expect(one.headers.location).toBe(`/v2/${repo}/blobs/${sha(layer)}`);
    const get = await call('GET', `/v2/${repo}/blobs/${sha(layer)}`);
    expect(get.status).toBe(200);
    expect(sha(get.body)).toBe(sha(layer));
    // Nothing of the sessions is left.
    expect(await readdir(path.join(root, 'docker/registry/v2/repositories', repo, '_uploads')).catch(() => [])).toEqual([]);
  });

  it('chunked: PATCHes in order, 416 out of order, status with Range, PUT to finish', async () => {
    const data = randomBytes(1_000_000);
    const post = await call('POST', `/v2/${repo}/blobs/uploads/`);
    const loc = post.headers.location as string;
    const chunks = [data.subarray(0, 400_000), data.subarray(400_000, 800_000), data.subarray(800_000)];
    let offset = 0;
    for (const [i, c] of chunks.slice(0, 2).entries()) {
      const r = await call('PATCH', loc, { headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + c.length - 1}`, 'content-length': String(c.length) }, body: c });
      expect(r.status, `chunk ${i}`).toBe(202);
      expect(r.headers.range).toBe(`0-${offset + c.length - 1}`);
      expect(r.headers['docker-upload-uuid']).toBeTruthy();
      offset += c.length;
    }
    // A chunk that does not start where the upload ends.
    const bad = await call('PATCH', loc, { headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${chunks[2]!.length - 1}`, 'content-length': String(chunks[2]!.length) }, body: chunks[2]! });
    expect(bad.status).toBe(416);
    expect(bad.headers.range).toBe(`0-${offset - 1}`);
    const status = await call('GET', loc);
    expect(status.status).toBe(204);
    expect(status.headers.range).toBe(`0-${offset - 1}`);
    expect(status.headers.location).toBe(loc);
    const put = await call('PUT', `${loc}?digest=${sha(data)}`, { headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${data.length - 1}`, 'content-length': String(chunks[2]!.length) }, body: chunks[2]! });
    expect(put.status).toBe(201);
    expect(sha(await readFile(blobPath(sha(data))))).toBe(sha(data));
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
    const dir = path.join(root, 'docker/registry/v2/repositories', repo, '_uploads', id);
    expect(await exists(path.join(dir, 'data'))).toBe(true);
    expect(await reg.push.sweepUploads(Date.now())).toBe(0);
    expect((await call('GET', loc)).status).toBe(204);
    expect(await reg.push.sweepUploads(Date.now() + 25 * 3_600_000)).toBeGreaterThanOrEqual(1);
    expect(await exists(dir)).toBe(false);
    expect(code(await call('GET', loc))).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('cross-repository mount: 201 when the source holds the blob, else an upload session', async () => {
    const m = await call('POST', `/v2/other/app/blobs/uploads/?mount=${sha(layer)}&from=${repo}`);
    expect(m.status).toBe(201);
    expect(m.headers.location).toBe(`/v2/other/app/blobs/${sha(layer)}`);
    expect((await call('HEAD', `/v2/other/app/blobs/${sha(layer)}`)).status).toBe(200);
    const miss = await call('POST', `/v2/other/app/blobs/uploads/?mount=${sha(Buffer.from('nope'))}&from=${repo}`);
    expect(miss.status).toBe(202);
    expect(miss.headers.location).toMatch(/\/blobs\/uploads\//);
    // Not held by the named source either: a session, not a mount.
    const elsewhere = await call('POST', `/v2/third/app/blobs/uploads/?mount=${sha(layer)}&from=nobody/here`);
    expect(elsewhere.status).toBe(202);
  });

  it('manifests: by tag and by digest; missing references, bad JSON and a wrong digest are refused', async () => {
    manifest = imageManifest({ d: sha(config), size: config.length }, [{ d: sha(layer), size: layer.length }]);
    manifestDigest = sha(manifest);
    const put = await call('PUT', `/v2/${repo}/manifests/v1`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(put.status).toBe(201);
    expect(put.headers.location).toBe(`/v2/${repo}/manifests/${manifestDigest}`);
    expect(put.headers['docker-content-digest']).toBe(manifestDigest);
    const byDigest = await call('PUT', `/v2/${repo}/manifests/${manifestDigest}`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(byDigest.status).toBe(201);

    const missing = imageManifest({ d: sha(config), size: config.length }, [{ d: sha(Buffer.from('absent')), size: 6 }]);
    const r1 = await call('PUT', `/v2/${repo}/manifests/broken`, { headers: { 'content-type': OCI_MANIFEST }, body: missing });
    expect(r1.status).toBe(404);
    expect(code(r1)).toBe('MANIFEST_BLOB_UNKNOWN');
    const r2 = await call('PUT', `/v2/${repo}/manifests/broken`, { headers: { 'content-type': OCI_MANIFEST }, body: '{"schemaVersion": 2,' });
    expect(r2.status).toBe(400);
    expect(code(r2)).toBe('MANIFEST_INVALID');
    const r3 = await call('PUT', `/v2/${repo}/manifests/${sha(Buffer.from('x'))}`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(r3.status).toBe(400);
    expect(code(r3)).toBe('DIGEST_INVALID');
    const r4 = await call('PUT', `/v2/${repo}/manifests/bad:tag`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
    expect(r4.status).toBe(400);
    const big = Buffer.alloc(5 * 2 ** 20, 0x20);
    const r5 = await call('PUT', `/v2/${repo}/manifests/huge`, { headers: { 'content-type': OCI_MANIFEST }, body: big });
    expect(r5.status).toBe(413);
    expect(r5.json().errors?.[0]?.message).toMatch(/maxManifestSize/);
    // None of the refused pushes made a tag.
    const tags = await call('GET', `/v2/${repo}/tags/list`);
    expect(tags.json().tags).toEqual(['v1']);
  });
});

describe('pull', () => {
  it('manifests by tag and digest, GET and HEAD, exact bytes; unknown ones are 404 with the right code', async () => {
    for (const ref of ['v1', manifestDigest]) {
      const g = await call('GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } });
      expect(g.status).toBe(200);
      expect(g.body).toEqual(manifest);
      expect(g.headers['docker-content-digest']).toBe(manifestDigest);
      expect(g.headers['content-type']).toBe(OCI_MANIFEST);
      const h = await call('HEAD', `/v2/${repo}/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } });
      expect(h.status).toBe(200);
      expect(h.headers['content-length']).toBe(String(manifest.length));
    }
    const none = await call('GET', `/v2/${repo}/manifests/nope`);
    expect(none.status).toBe(404);
    expect(code(none)).toBe('MANIFEST_UNKNOWN');
    const blob = await call('GET', `/v2/${repo}/blobs/${sha(layer)}`);
    expect(blob.status).toBe(200);
    expect(blob.body.equals(layer)).toBe(true);
    const noBlob = await call('GET', `/v2/${repo}/blobs/${sha(Buffer.from('zz'))}`);
    expect(noBlob.status).toBe(404);
    expect(code(noBlob)).toBe('BLOB_UNKNOWN');
  });
});

describe('content discovery', () => {
  it('tags/list with n and last', async () => {
    for (const t of ['v2', 'v3', 'v4']) expect((await call('PUT', `/v2/${repo}/manifests/${t}`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest })).status).toBe(201);
    const all = await call('GET', `/v2/${repo}/tags/list`);
    expect(all.json()).toEqual({ name: repo, tags: ['v1', 'v2', 'v3', 'v4'] });
    const page = await call('GET', `/v2/${repo}/tags/list?n=2&last=v1`);
    expect(page.json().tags).toEqual(['v2', 'v3']);
    expect(page.headers.link).toContain('rel="next"');
  });

  it('referrers: pushed with a subject (OCI-Subject), listed, filtered by artifactType; unknown subject gives an empty index', async () => {
    const empty = Buffer.from('{}');
    const emptyDigest = await pushBlob(repo, empty);
    const refs: string[] = [];
    for (const type of ['application/vnd.example.sbom', 'application/vnd.example.signature']) {
      const m = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: type,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
        layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 }],
        subject: { mediaType: OCI_MANIFEST, digest: manifestDigest, size: manifest.length },
        annotations: { 'org.example.kind': type },
      }));
      const r = await call('PUT', `/v2/${repo}/manifests/${sha(m)}`, { headers: { 'content-type': OCI_MANIFEST }, body: m });
      expect(r.status).toBe(201);
      expect(r.headers['oci-subject']).toBe(manifestDigest);
      refs.push(sha(m));
    }
    const list = await call('GET', `/v2/${repo}/referrers/${manifestDigest}`);
    expect(list.status).toBe(200);
    expect(list.headers['content-type']).toBe('application/vnd.oci.image.index.v1+json');
    const idx = list.json() as { manifests: Array<{ digest: string; artifactType: string; annotations: Record<string, string> }> };
    expect(idx.manifests.map((m) => m.digest).sort()).toEqual([...refs].sort());
    expect(idx.manifests.every((m) => m.annotations['org.example.kind'] === m.artifactType)).toBe(true);
    const filtered = await call('GET', `/v2/${repo}/referrers/${manifestDigest}?artifactType=application/vnd.example.sbom`);
    expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
    expect((filtered.json() as { manifests: unknown[] }).manifests).toHaveLength(1);
    const none = await call('GET', `/v2/${repo}/referrers/${sha(Buffer.from('no subject'))}`);
    expect(none.status).toBe(200);
    expect((none.json() as { manifests: unknown[] }).manifests).toEqual([]);
    const bad = await call('GET', `/v2/${repo}/referrers/sha256:short`);
    expect(bad.status).toBe(400);
  });
});

describe('content management', () => {
  it('deletes a tag, a manifest by digest and a blob (202), after which each is 404', async () => {
    expect((await call('DELETE', `/v2/${repo}/manifests/v4`)).status).toBe(202);
    expect((await call('GET', `/v2/${repo}/manifests/v4`)).status).toBe(404);
    expect((await call('GET', `/v2/${repo}/manifests/v3`)).status).toBe(200);

    const del = await call('DELETE', `/v2/${repo}/manifests/${manifestDigest}`);
    expect(del.status).toBe(202);
    const gone = await call('GET', `/v2/${repo}/manifests/${manifestDigest}`);
    expect(gone.status).toBe(404);
    expect(code(gone)).toBe('MANIFEST_UNKNOWN');
    // The tags that pointed at it went with it.
    expect((await call('GET', `/v2/${repo}/manifests/v1`)).status).toBe(404);

    expect((await call('DELETE', `/v2/${repo}/blobs/${sha(layer)}`)).status).toBe(202);
    const b = await call('GET', `/v2/${repo}/blobs/${sha(layer)}`);
    expect(b.status).toBe(404);
    expect(code(b)).toBe('BLOB_UNKNOWN');
    // Another repository that mounted it still has it: the bytes stay until gc.
    expect((await call('GET', `/v2/other/app/blobs/${sha(layer)}`)).status).toBe(200);
    expect((await call('DELETE', `/v2/${repo}/blobs/${sha(layer)}`)).status).toBe(404);
  });

  it('with storage.delete.enabled false, every delete is 405 UNSUPPORTED and nothing changes', async () => {
    const ro = await startAirlock(`storage:\n  root: ${root}\nlog:\n  level: warn\n`);
    try {
      for (const p of [`/v2/${repo}/manifests/v3`, `/v2/other/app/blobs/${sha(layer)}`]) {
        const r = await request(`${ro.url}${p}`, { method: 'DELETE' });
        const body = (await r.body.json()) as { errors: Array<{ code: string; message: string }> };
        expect(r.statusCode).toBe(405);
        expect(body.errors[0]!.code).toBe('UNSUPPORTED');
        expect(body.errors[0]!.message).toMatch(/storage\.delete\.enabled/);
      }
      expect((await call('GET', `/v2/other/app/blobs/${sha(layer)}`)).status).toBe(200);
    } finally {
      await ro.stop();
    }
  });
});
