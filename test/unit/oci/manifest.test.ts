import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DigestingStream, digestBytes } from '../../../src/oci/digest.js';
import { ManifestInvalidError } from '../../../src/oci/errors.js';
import { parseAccept } from '../../../src/oci/media-types.js';
import { blobDescriptors, parseManifest, parsePlatform, platformMatches } from '../../../src/oci/manifest.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const desc = (mediaType: string, c: string, size = 10) => ({ mediaType, digest: d(c), size });

describe('parseManifest', () => {
  it('reads OCI manifests, indexes and the Docker types', () => {
    const oci = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: desc('application/vnd.oci.image.config.v1+json', 'a'), layers: [desc('application/vnd.oci.image.layer.v1.tar', 'b')] })));
    expect(oci.kind).toBe('image');
    expect(blobDescriptors(oci).map((x) => x.digest.toString())).toEqual([d('a'), d('b')]);
    const idx = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ ...desc('application/vnd.oci.image.manifest.v1+json', 'c'), platform: { os: 'linux', architecture: 'amd64' } }] })));
    expect(idx.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(idx.kind).toBe('index');
    const list = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', manifests: [] })));
    expect(list.kind).toBe('index');
    const noType = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: desc('x/y', 'a'), layers: [] })), 'application/vnd.docker.distribution.manifest.v2+json');
    expect(noType.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const withSubject = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/x.sig', config: desc('application/vnd.oci.empty.v1+json', 'a', 2), layers: [], subject: desc('application/vnd.oci.image.manifest.v1+json', 'f') })));
    expect(withSubject.subject?.digest.toString()).toBe(d('f'));
  });

  it('refuses invalid manifests with MANIFEST_INVALID and a reason', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ schemaVersion: 1, name: 'x' }, /schema 1 is not supported/],
      [{ schemaVersion: 3 }, /schemaVersion/],
      [[], /JSON object/],
      [{ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [] }, /config/],
      [{ schemaVersion: 2, config: { mediaType: 'x', digest: 'sha256:abc', size: 1 } }, /digest/],
      [{ schemaVersion: 2, config: { mediaType: 'x', digest: d('a'), size: -1 } }, /size/],
      [{ schemaVersion: 2, config: { mediaType: 'x', digest: d('a'), size: 1.5 } }, /size/],
      [{ schemaVersion: 2, config: { digest: d('a'), size: 1 } }, /mediaType/],
      [{ schemaVersion: 2, mediaType: 'text/plain', config: desc('x', 'a') }, /unsupported manifest media type/],
      [{ schemaVersion: 2, manifests: 'x', mediaType: 'application/vnd.oci.image.index.v1+json' }, /manifests/],
    ];
    for (const [json, why] of bad) expect(() => parseManifest(Buffer.from(JSON.stringify(json)))).toThrow(why);
    expect(() => parseManifest(Buffer.from('{not json'))).toThrow(/not valid JSON/);
    expect(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] })), 'application/vnd.oci.image.manifest.v1+json')).toThrow(/does not match/);
  });

  it('never throws anything but ManifestInvalidError on random input (fuzz, bounded)', () => {
    const seeds = ['{"schemaVersion":2,"config":', '{"schemaVersion":2,"manifests":[', '{"schemaVersion":2,"mediaType":', '[', '{"a":'];
    for (let i = 0; i < 2000; i++) {
      const r = randomBytes(i % 64);
      const input = i % 2 ? r : Buffer.concat([Buffer.from(seeds[i % seeds.length]!), Buffer.from(r.toString('latin1'))]);
      try {
        parseManifest(input);
      } catch (e) {
        expect(e).toBeInstanceOf(ManifestInvalidError);
      }
    }
  });
});

describe('platforms and Accept', () => {
  it('parses and matches platforms', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(() => parsePlatform('linux')).toThrow(/os\/architecture/);
    expect(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(false);
    expect(platformMatches(undefined, { os: 'linux', architecture: 'amd64' })).toBe(false);
  });
  it('parses Accept headers', () => {
    expect(parseAccept(['application/vnd.oci.image.index.v1+json, application/JSON;q=0.5', 'text/plain,,'])).toEqual(['application/vnd.oci.image.index.v1+json', 'application/json', 'text/plain']);
    expect(parseAccept(undefined)).toEqual([]);
  });
});

describe('DigestingStream', () => {
  it('hashes a multi-chunk stream while passing it through', async () => {
    const chunks = Array.from({ length: 50 }, () => randomBytes(10_000));
    const s = new DigestingStream();
    const out: Buffer[] = [];
    for await (const c of Readable.from(chunks).pipe(s)) out.push(c as Buffer);
    expect(Buffer.concat(out).equals(Buffer.concat(chunks))).toBe(true);
    expect(s.digest().equals(digestBytes(Buffer.concat(chunks)))).toBe(true);
    expect(s.bytes).toBe(500_000);
  });
});
