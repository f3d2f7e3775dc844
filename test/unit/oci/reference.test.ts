import { describe, expect, it } from 'vitest';
import { Digest } from '../../../src/oci/digest.js';
import { DigestInvalidError, NameInvalidError, TagInvalidError } from '../../../src/oci/errors.js';
import { formatImageReference, isValidRepositoryName, isValidTag, parseImageReference, parseManifestReference, parseRepositoryName } from '../../../src/oci/reference.js';

const HEX = 'a'.repeat(64);

describe('repository names (distribution grammar)', () => {
  it('accepts valid names of any depth', () => {
    for (const n of ['a', 'library/alpine', 'ghcr.io/org/app', 'a__b', 'a-b', 'a--b', 'a.b', 'a_b', 'x/y/z/w', '0', `${'a'.repeat(255)}`]) {
      expect(isValidRepositoryName(n)).toBe(true);
    }
  });
  it('refuses hostile and malformed names with NAME_INVALID', () => {
    for (const n of ['', '..', '.', 'a/..', '../a', '/a', 'a/', 'a//b', 'A', 'aB', '-a', 'a-', '_a', 'a_', 'a___b', 'a..b', 'a.-b', '%2e%2e', 'a%2fb', 'a\0b', 'a b', 'a:b', 'a@b', `${'a'.repeat(256)}`, 'ü', 'a\nb']) {
      expect(isValidRepositoryName(n)).toBe(false);
      expect(() => parseRepositoryName(n)).toThrow(NameInvalidError);
    }
  });
  it('explains why', () => {
    expect(() => parseRepositoryName('Team/app')).toThrow(/lowercase/);
    expect(() => parseRepositoryName('a//b')).toThrow(/empty path component/);
    expect(() => parseRepositoryName('a'.repeat(300))).toThrow(/longer than 255/);
  });
});

describe('tags', () => {
  it('accepts the tag grammar', () => {
    for (const t of ['latest', 'v1.0', '1', 'A_b-c.d', '_x', 'x'.repeat(128)]) expect(isValidTag(t)).toBe(true);
  });
  it('refuses bad tags', () => {
    for (const t of ['', '.x', '-x', 'x'.repeat(129), 'a/b', 'a:b', 'a b', '..', 'a\0', 'ü']) expect(isValidTag(t)).toBe(false);
    expect(() => parseManifestReference('-bad')).toThrow(TagInvalidError);
  });
});

describe('manifest references', () => {
  it('tells tags from digests', () => {
    expect(parseManifestReference('v1')).toEqual({ kind: 'tag', tag: 'v1' });
    const r = parseManifestReference(`sha256:${HEX}`);
    expect(r.kind === 'digest' && r.digest.toString()).toBe(`sha256:${HEX}`);
    expect(() => parseManifestReference('sha256:abc')).toThrow(DigestInvalidError);
  });
});

describe('image references (Docker normalisation)', () => {
  it('normalises Docker Hub names', () => {
    expect(parseImageReference('alpine')).toEqual({ registry: 'docker.io', repository: 'library/alpine', tag: 'latest' });
    expect(parseImageReference('alpine:3.20')).toEqual({ registry: 'docker.io', repository: 'library/alpine', tag: '3.20' });
    expect(parseImageReference('index.docker.io/foo')).toEqual({ registry: 'docker.io', repository: 'library/foo', tag: 'latest' });
    expect(parseImageReference('docker.io/org/app:1')).toEqual({ registry: 'docker.io', repository: 'org/app', tag: '1' });
  });
  it('keeps other registries, ports, and digests', () => {
    expect(parseImageReference('ghcr.io/org/app:1.4')).toEqual({ registry: 'ghcr.io', repository: 'org/app', tag: '1.4' });
    expect(parseImageReference('localhost:5000/x')).toEqual({ registry: 'localhost:5000', repository: 'x', tag: 'latest' });
    const d = parseImageReference(`quay.io/x/y@sha256:${HEX}`);
    expect(d.registry).toBe('quay.io');
    expect(d.tag).toBeUndefined();
    expect(d.digest?.toString()).toBe(`sha256:${HEX}`);
    const both = parseImageReference(`app:1@sha256:${HEX}`);
    expect(both.tag).toBe('1');
    expect(formatImageReference(both)).toBe(`docker.io/library/app:1@sha256:${HEX}`);
  });
  it('refuses malformed references', () => {
    for (const s of ['', 'UPPER', 'a b', 'a:', 'a@sha256:zz', 'a:-x', '/x', 'x//y', ':tag']) expect(() => parseImageReference(s)).toThrow();
  });
});

describe('digests', () => {
  it('parses sha256 and sha512', () => {
    expect(Digest.parse(`sha256:${HEX}`).hex).toBe(HEX);
    expect(Digest.parse(`sha512:${'b'.repeat(128)}`).algorithm).toBe('sha512');
  });
  it('refuses anything else with DIGEST_INVALID', () => {
    for (const s of [`sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `sha256:${'a'.repeat(65)}`, `sha384:${'a'.repeat(96)}`, 'md5:00', `sha256:${'g'.repeat(64)}`, `sha256 :${HEX}`, `sha256:${HEX}\0`, '', ':', 'sha256', `SHA256:${HEX}`, `sha256:${HEX}/../x`, 'x'.repeat(10_000)]) {
      expect(() => Digest.parse(s)).toThrow(DigestInvalidError);
    }
    expect(() => Digest.parse(`sha384:${'a'.repeat(96)}`)).toThrow(/unsupported digest algorithm/);
  });
});
