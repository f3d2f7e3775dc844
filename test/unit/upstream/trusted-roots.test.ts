import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { trustedRoots } from '../../../src/upstream/trusted-roots.js';

describe('trustedRoots', () => {
  it('adds an upstream\'s CA to the default roots instead of replacing them', () => {
    const extra = '-----BEGIN CERTIFICATE-----\nupstream\n-----END CERTIFICATE-----\n';
    const ca = trustedRoots(extra)!;
    expect(ca).toContain(extra);
    for (const root of tls.rootCertificates) expect(ca).toContain(root);
  });

  it('leaves Node\'s defaults alone without one', () => {
    expect(trustedRoots(undefined)).toBeUndefined();
  });
});
