import { describe, expect, it } from 'vitest';
import { Digest } from '../../../src/oci/digest.js';
import { layoutPath, parseLayoutPath } from '../../../src/storage/paths.js';

const HEX = 'a'.repeat(64);
const D = Digest.parse(`sha256:${HEX}`);

describe('layout paths (bundle entries)', () => {
  it('parses every kind of file and round-trips', () => {
    const files = [
      { kind: 'blob', digest: D },
      { kind: 'layer', name: 'library/alpine', digest: D },
      { kind: 'revision', name: 'ghcr.io/org/app', digest: D },
      { kind: 'tag-current', name: 'a/b', tag: '1.0' },
      { kind: 'tag-index', name: 'a', tag: 'v1.2_x', digest: D },
    ] as const;
    for (const f of files) expect(parseLayoutPath(layoutPath(f))).toEqual(f);
  });

  it('refuses anything that is not a file of the layout', () => {
    for (const p of [
      '../etc/passwd',
      '/docker/registry/v2/blobs/sha256/aa/' + HEX + '/data',
      'docker/registry/v2/blobs/sha256/ab/' + HEX + '/data',
      'docker/registry/v2/blobs/md5/aa/' + HEX + '/data',
      'docker/registry/v2/blobs/sha256/aa/' + HEX + '/data2',
      'docker/registry/v2/repositories/../x/_layers/sha256/' + HEX + '/link',
      'docker/registry/v2/repositories/UPPER/_layers/sha256/' + HEX + '/link',
      'docker/registry/v2/repositories/a//b/_layers/sha256/' + HEX + '/link',
      'docker/registry/v2/repositories/a/_manifests/tags/../current/link',
      'docker/registry/v2/repositories/a/_manifests/tags/.hidden/current/link',
      'docker/registry/v2/repositories/a/_uploads/x/data',
      'docker/registry/v2/repositories/a/_layers/sha256/' + HEX.slice(1) + '/link',
      '.airlock/pins/x',
      'docker/registry/v2/repositories/a/_manifests/revisions/sha256/' + HEX + '/link\0',
    ]) {
      expect(parseLayoutPath(p), p).toBeUndefined();
    }
  });
});
