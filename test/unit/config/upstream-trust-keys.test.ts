import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';

const cfg = (extra: string) => parseConfig(`upstreams:\n  docker.io:\n    url: https://registry.example\n${extra}`, { baseDir: '/tmp', env: {} });

describe('upstreams.<host>.tokenHosts and allowPrivateRedirects', () => {
  it('default to none and false', () => {
    const u = cfg('').upstreams['docker.io']!;
    expect(u.tokenHosts).toEqual([]);
    expect(u.allowPrivateRedirects).toBe(false);
  });

  it('take host names and host:port', () => {
    const u = cfg('    tokenHosts: [auth.example, "auth.example:8443", "[::1]:5001"]\n    allowPrivateRedirects: true\n').upstreams['docker.io']!;
    expect(u.tokenHosts).toEqual(['auth.example', 'auth.example:8443', '[::1]:5001']);
    expect(u.allowPrivateRedirects).toBe(true);
  });

  it('refuse a URL where a host is expected', () => {
    expect(() => cfg('    tokenHosts: ["https://auth.example/token"]\n')).toThrow(/tokenHosts.*host name or host:port/);
  });
});
