import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RepoIndex, type IndexSource } from '../../../src/app/console/repo-index.js';
import { listPage, pullFigures } from '../../../src/app/console/repo-list.js';
import type { MayPull, RepoQuery } from '../../../src/http/console-service.js';
import { AccessTimes } from '../../../src/storage/access-times.js';
import type { StorageDriver } from '../../../src/storage/driver.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const sha = (s: string | Buffer) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const all = () => true;

/** A store in memory: manifests by digest, repositories with revisions and tags. */
class FakeStore implements IndexSource {
  blobs = new Map<string, Buffer>();
  repos = new Map<string, { revisions: Set<string>; tags: Map<string, string> }>();
  pinned: Array<{ name: string; digest: string }> = [];
  /** The records the pull path writes (in memory only: nothing is flushed here). */
  times = new AccessTimes({} as StorageDriver, { persist: false });
  reads = 0;

  image(layers: Array<[string, number]>, config: [string, number] = [`cfg-${layers.map((l) => l[0]).join()}`, 100]): string {
    const desc = ([id, size]: [string, number]) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(id), size });
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...desc(config), mediaType: 'application/vnd.oci.image.config.v1+json' }, layers: layers.map(desc) }));
    const d = sha(bytes);
    this.blobs.set(d, bytes);
    return d;
  }

  index(children: string[]): string {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((c, i) => ({ mediaType: OCI_MANIFEST, digest: c, size: this.blobs.get(c)!.byteLength, platform: { os: 'linux', architecture: `arch${i}` } })) }));
    const d = sha(bytes);
    this.blobs.set(d, bytes);
    return d;
  }

  put(repo: string, digest: string, tag?: string): void {
    const r = this.repos.get(repo) ?? { revisions: new Set(), tags: new Map() };
    r.revisions.add(digest);
    if (tag) r.tags.set(tag, digest);
    this.repos.set(repo, r);
  }

  async *repositories() {
    yield* [...this.repos.keys()].sort();
  }
  async revisions(repo: string) {
    return [...(this.repos.get(repo)?.revisions ?? [])];
  }
  async tags(repo: string) {
    return [...(this.repos.get(repo)?.tags ?? [])];
  }
  async manifest(d: string) {
    this.reads++;
    return this.blobs.get(d);
  }
  async describe(repo: string) {
    return repo.startsWith('acme/') ? { kind: 'local' as const, upstream: null } : { kind: 'mirror' as const, upstream: 'docker.io' };
  }
  async pins() {
    return this.pinned;
  }
}

const q = (over: Partial<RepoQuery> = {}): RepoQuery => ({ sort: 'name', order: 'asc', offset: 0, limit: 50, ...over });

/** A page as the serving thread builds it (index-client.ts): the index's rows, the pull figures from the records. */
const list = (index: RepoIndex, s: FakeStore, query: RepoQuery, may: MayPull) => listPage(index.rows(query.q), query, may, pullFigures((n) => s.times.of(n)));
/** Pulls of one image, or of every image of the repository, as the console shows them. */
const pulls = (s: FakeStore, name: string, digest?: string) => (digest === undefined ? pullFigures((n) => s.times.of(n)).pulls(name) : (s.times.of(name)?.get(digest)?.pulls ?? 0));

describe('console repository index', () => {
  it('counts images, tags and the distinct bytes each repository references', async () => {
    const s = new FakeStore();
    const a = s.image([['l1', 1000], ['l2', 2000]]);
    const b = s.image([['l1', 1000], ['l3', 500]]);
    s.put('library/alpine', a, '3.20');
    s.put('library/alpine', b, '3.21');
    const child = s.image([['x', 10]]);
    const idx = s.index([child]);
    s.put('acme/app', child);
    s.put('acme/app', idx, 'v1');
    s.pinned.push({ name: 'acme/app', digest: idx });
    s.times.touch('library/alpine', b, 1234);
    const index = new RepoIndex(s);
    await index.scan();
    const page = list(index, s, q(), all);
    expect(page.total).toBe(2);
    const [app, alpine] = page.items;
    // l1 counted once; both configs; both manifests' own bytes.
    expect(alpine).toMatchObject({ name: 'library/alpine', kind: 'mirror', upstream: 'docker.io', images: 2, tags: 2, lastPulled: 1234, pulls: 0, pinned: false });
    expect(alpine!.size).toBe(1000 + 2000 + 500 + 100 + 100 + s.blobs.get(a)!.byteLength + s.blobs.get(b)!.byteLength);
    // The index's child is not an image of its own.
    expect(app).toMatchObject({ name: 'acme/app', kind: 'local', upstream: null, images: 1, tags: 1, pinned: true });
    expect(index.imageSize(idx)).toBe(s.blobs.get(idx)!.byteLength + s.blobs.get(child)!.byteLength + 10 + 100);
  });

  it('filters by substring and by what the user may pull, sorts and pages', async () => {
    const s = new FakeStore();
    for (let i = 0; i < 30; i++) s.put(`team${i % 3}/svc${String(i).padStart(2, '0')}`, s.image([[`l${i}`, (i + 1) * 10]]), 'latest');
    const index = new RepoIndex(s);
    await index.scan();
    const mine = (n: string) => n.startsWith('team1/');
    const page = list(index, s, q({ q: 'SVC', sort: 'size', order: 'desc', limit: 3 }), mine);
    expect(page.total).toBe(10);
    expect(page.items.map((r) => r.name)).toEqual(['team1/svc28', 'team1/svc25', 'team1/svc22']);
    expect(list(index, s, q({ offset: 9, limit: 5 }), mine).items.map((r) => r.name)).toEqual(['team1/svc28']);
    // Hostile: a forbidden repository is absent even when asked for by its exact name.
    expect(list(index, s, q({ q: 'team0/svc00' }), mine).total).toBe(0);
  });

  it('reads pulls and last pulls from the access records; a rescan drops what vanished', async () => {
    const s = new FakeStore();
    const a = s.image([['l1', 5]]);
    const b = s.image([['l2', 6]]);
    s.put('library/y', a, 'v1');
    s.put('library/y', b, 'v2');
    const index = new RepoIndex(s);
    await index.scan();
    for (let i = 0; i < 3; i++) s.times.touch('library/y', a, 7000 + i, true);
    s.times.touch('library/y', b, 6000, true);
    // A HEAD (not a pull) moves the last access, not the count.
    s.times.touch('library/y', b, 7500, false);
    expect([pulls(s, 'library/y', a), pulls(s, 'library/y', b), pulls(s, 'library/y')]).toEqual([3, 1, 4]);
    expect(list(index, s, q(), all).items[0]).toMatchObject({ pulls: 4, lastPulled: 7500 });
    // Counts stay across refreshes and a rescan; a manifest deleted (its record forgotten) drops its pulls.
    await index.refresh('library/y');
    await index.scan();
    expect(pulls(s, 'library/y')).toBe(4);
    s.repos.get('library/y')!.revisions.delete(b);
    s.repos.get('library/y')!.tags.delete('v2');
    s.times.forget('library/y', b);
    await index.refresh('library/y');
    expect([pulls(s, 'library/y', a), pulls(s, 'library/y', b), pulls(s, 'library/y')]).toEqual([3, 0, 3]);
    expect(list(index, s, q(), all).items[0]).toMatchObject({ pulls: 3, lastPulled: 7002 });
    s.repos.delete('library/y');
    await index.scan();
    expect(list(index, s, q(), all).total).toBe(0);
  });

  it('sorts by pulls and by last pull, never-pulled last in descending order', async () => {
    const s = new FakeStore();
    for (const n of ['a/one', 'a/two', 'a/three']) s.put(n, s.image([[n, 1]]), 'v');
    const [one, two] = [s.repos.get('a/one')!, s.repos.get('a/two')!].map((r) => [...r.revisions][0]!);
    const index = new RepoIndex(s);
    await index.scan();
    for (let i = 0; i < 5; i++) s.times.touch('a/one', one!, 100, true);
    s.times.touch('a/two', two!, 900, true);
    expect(list(index, s, q({ sort: 'pulls', order: 'desc' }), all).items.map((r) => [r.name, r.pulls])).toEqual([['a/one', 5], ['a/two', 1], ['a/three', 0]]);
    expect(list(index, s, q({ sort: 'lastPulled', order: 'desc' }), all).items.map((r) => [r.name, r.lastPulled])).toEqual([['a/two', 900], ['a/one', 100], ['a/three', null]]);
  });

  it('a rescan parses only manifests it has not seen', async () => {
    const s = new FakeStore();
    for (let i = 0; i < 20; i++) s.put(`r/${i}`, s.image([[`l${i}`, 1]]), 'v');
    const index = new RepoIndex(s);
    await index.scan();
    expect(s.reads).toBe(20);
    await index.scan();
    expect(s.reads).toBe(20);
  });

  it('answers the list of 10,000 repositories with 100,000 blobs in well under 100 ms', async () => {
    const s = new FakeStore();
    for (let i = 0; i < 10_000; i++) {
      const layers: Array<[string, number]> = [];
      for (let j = 0; j < 9; j++) layers.push([`r${i}l${j}`, (i * 7 + j) % 100_000]);
      const d = s.image(layers);
      s.put(`org${i % 50}/repo${i}`, d, 'latest');
      // Pulled, most of them: the pulls and last-pull orders read a record per repository.
      if (i % 10 !== 0) for (let k = 0; k < i % 4; k++) s.times.touch(`org${i % 50}/repo${i}`, d, 1000 + i, true);
    }
    const index = new RepoIndex(s, { concurrency: 32 });
    await index.scan();
    expect(index.size).toBe(10_000);
    // The best of three per order: the machine is shared, a GC pause is not the index's cost.
    for (const sort of ['name', 'size', 'lastPulled', 'pulls', 'images'] as const) {
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        const page = list(index, s, q({ sort, order: 'desc', q: 'repo', limit: 500 }), (n) => !n.startsWith('org7/'));
        best = Math.min(best, performance.now() - t);
        expect(page.total).toBe(9_800);
        expect(page.items).toHaveLength(500);
      }
      expect(best).toBeLessThan(100);
    }
  });
});
