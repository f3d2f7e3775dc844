import { describe, expect, it } from 'vitest';
import { parseV2Path } from '../../../src/http/v2-path.js';
import { NameInvalidError } from '../../../src/oci/errors.js';

describe('parseV2Path', () => {
  it('finds each endpoint, with names of any depth', () => {
    expect(parseV2Path('/v2/')).toEqual({ kind: 'base' });
    expect(parseV2Path('/v2')).toEqual({ kind: 'base' });
    expect(parseV2Path('/v2/_catalog?n=2')).toEqual({ kind: 'catalog' });
    expect(parseV2Path('/v2/library/alpine/tags/list?n=1')).toEqual({ kind: 'tags', name: 'library/alpine' });
    expect(parseV2Path('/v2/ghcr.io/org/app/manifests/1.4')).toEqual({ kind: 'manifest', name: 'ghcr.io/org/app', reference: '1.4' });
    expect(parseV2Path(`/v2/a/blobs/sha256%3A${'0'.repeat(64)}`)).toEqual({ kind: 'blob', name: 'a', digest: `sha256:${'0'.repeat(64)}` });
    expect(parseV2Path('/v2/a/b/blobs/uploads/')).toEqual({ kind: 'upload', name: 'a/b', session: undefined });
    expect(parseV2Path('/v2/a/blobs/uploads/123-abc')).toEqual({ kind: 'upload', name: 'a', session: '123-abc' });
    expect(parseV2Path('/v2/x/blobs/manifests/latest')).toEqual({ kind: 'manifest', name: 'x/blobs', reference: 'latest' });
  });

  it('does not decode names: encoded slashes and dots are invalid, never a different path', () => {
    for (const url of ['/v2/a%2fb/manifests/x', '/v2/%2e%2e/manifests/x', '/v2/a/%2e%2e/%2e%2e/tags/list', '/v2/a%00/blobs/sha256:00']) {
      expect(() => parseV2Path(url)).toThrow(NameInvalidError);
    }
  });

  it('refuses hostile names', () => {
    for (const name of ['..', 'a/../b', '/etc', 'a//b', 'A', 'a/', `${'a'.repeat(256)}`, 'a\0b', '']) {
      expect(() => parseV2Path(`/v2/${name}/manifests/latest`)).toThrow(NameInvalidError);
    }
  });

  it('calls anything else unknown', () => {
    expect(parseV2Path('/v2/a/b')).toEqual({ kind: 'unknown' });
    expect(parseV2Path('/v3/a/manifests/x')).toEqual({ kind: 'unknown' });
    expect(parseV2Path(`/v2/${'a/'.repeat(2000)}manifests/x`)).toEqual({ kind: 'unknown' });
  });
});
