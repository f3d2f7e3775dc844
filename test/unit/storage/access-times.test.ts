/**
 * The access records (access-times.ts): last served times survive a restart through one file,
 * pull counts are counted per image in memory, and a read-only store's records are never written.
 */
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessTimes } from '../../../src/storage/access-times.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
let root: string;
const file = () => path.join(root, '.airlock/access.json');

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'airlock-access-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('access records', () => {
  it('counts pulls per image, not HEADs; tells of new images once; forget drops the record', () => {
    const t = new AccessTimes(new FilesystemDriver(root));
    const fresh: string[] = [];
    t.onNew = (repo) => fresh.push(repo);
    t.touch('library/x', A, 100, true);
    t.touch('library/x', A, 200, true);
    t.touch('library/x', A, 300, false);
    t.touch('library/x', B, 150, true);
    expect(t.get('library/x', A)).toBe(300);
    expect([...t.of('library/x')!].map(([d, r]) => [d, r.at, r.pulls])).toEqual([[A, 300, 2], [B, 150, 1]]);
    // Told once per image this process had no record of, not per pull.
    expect(fresh).toEqual(['library/x', 'library/x']);
    t.forget('library/x', A);
    t.forget('library/x', B);
    expect(t.of('library/x')).toBeUndefined();
    expect(t.get('library/x', A)).toBeUndefined();
  });

  it('writes the times in the file format of earlier versions and reads them back; counts start afresh', async () => {
    const t = new AccessTimes(new FilesystemDriver(root));
    t.touch('ghcr.io/org/app', A, 1234, true);
    t.touch('library/x', B, 5678);
    await t.flush();
    expect(JSON.parse(await readFile(file(), 'utf8'))).toEqual({ [`ghcr.io/org/app@${A}`]: 1234, [`library/x@${B}`]: 5678 });
    const again = new AccessTimes(new FilesystemDriver(root));
    await again.load();
    expect(again.get('ghcr.io/org/app', A)).toBe(1234);
    expect(again.of('ghcr.io/org/app')!.get(A)!.pulls).toBe(0);
  });

  it('ignores a damaged file and entries that are not a name@digest with a time', async () => {
    await mkdir(path.dirname(file()), { recursive: true });
    await writeFile(file(), JSON.stringify({ [`library/x@${A}`]: 7, '@nothing': 1, [`library/y@${B}`]: 'soon', noat: 3 }));
    const t = new AccessTimes(new FilesystemDriver(root));
    await t.load();
    expect(t.get('library/x', A)).toBe(7);
    expect(t.of('library/y')).toBeUndefined();
    expect(t.of('')).toBeUndefined();
    await writeFile(file(), '{"library/x@');
    const d = new AccessTimes(new FilesystemDriver(root));
    await d.load();
    expect(d.get('library/x', A)).toBeUndefined();
  });

  it('a read-only store records in memory and never writes', async () => {
    const t = new AccessTimes(new FilesystemDriver(root), { persist: false });
    t.touch('library/x', A, 1, true);
    await t.flush();
    expect(t.of('library/x')!.get(A)!.pulls).toBe(1);
    await expect(stat(file())).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
