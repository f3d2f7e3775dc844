import { describe, expect, it } from 'vitest';
import { Router } from '../../../src/mirror/router.js';

const upstreams = new Map([
  ['docker.io', 'hub'],
  ['ghcr.io', 'ghcr'],
]);

describe('router: what a client wrote -> stored name and upstream (README "Security model" table)', () => {
  const r = new Router(upstreams, 'docker.io', ['acme/**']);
  const cases: Array<[{ name: string; ns?: string }, string, string | undefined, string]> = [
    [{ name: 'alpine' }, 'library/alpine', 'hub', 'library/alpine'],
    [{ name: 'library/alpine' }, 'library/alpine', 'hub', 'library/alpine'],
    [{ name: 'library/alpine', ns: 'docker.io' }, 'library/alpine', 'hub', 'library/alpine'],
    [{ name: 'alpine', ns: 'index.docker.io' }, 'library/alpine', 'hub', 'library/alpine'],
    [{ name: 'docker.io/library/alpine' }, 'library/alpine', 'hub', 'library/alpine'],
    [{ name: 'docker.io/library/alpine', ns: 'docker.io' }, 'library/alpine', 'hub', 'library/alpine'],
    [{ name: 'org/app', ns: 'ghcr.io' }, 'ghcr.io/org/app', 'ghcr', 'org/app'],
    [{ name: 'ghcr.io/org/app' }, 'ghcr.io/org/app', 'ghcr', 'org/app'],
    [{ name: 'ghcr.io/org/app', ns: 'ghcr.io' }, 'ghcr.io/org/app', 'ghcr', 'org/app'],
    // Local names: no upstream, in every spelling.
    [{ name: 'acme/app' }, 'acme/app', undefined, 'acme/app'],
    [{ name: 'acme/app', ns: 'docker.io' }, 'acme/app', undefined, 'acme/app'],
    [{ name: 'docker.io/acme/app' }, 'acme/app', undefined, 'acme/app'],
  ];
  for (const [target, storeName, upstream, upstreamRepository] of cases) {
    it(`${target.name}${target.ns ? `?ns=${target.ns}` : ''} -> ${storeName}`, () => {
      const route = r.route(target);
      expect(route.storeName).toBe(storeName);
      expect(route.upstream).toBe(upstream);
      expect(route.local).toBe(upstream === undefined);
      if (upstream) expect(route.upstreamRepository).toBe(upstreamRepository);
    });
  }

  it('refuses a path that names one registry with an ns that names another', () => {
    expect(() => r.route({ name: 'ghcr.io/x/y', ns: 'docker.io' })).toThrow(/path names registry ghcr.io but ns names docker.io/);
    expect(() => r.route({ name: 'docker.io/x/y', ns: 'ghcr.io' })).toThrow(/NAME_INVALID|names registry/);
  });

  it('never stores a default-upstream name under a host-like first component (another registry\'s namespace)', () => {
    expect(() => r.route({ name: 'docker.io/ghcr.io/x' })).toThrow(/looks like a registry host/);
    expect(() => r.route({ name: 'quay.io/x', ns: 'docker.io' })).toThrow();
  });

  it('keeps an unconfigured registry to the store, with a refusal for misses', () => {
    const route = r.route({ name: 'quay.io/x/y' });
    expect(route.storeName).toBe('quay.io/x/y');
    expect(route.upstream).toBeUndefined();
    expect(route.local).toBe(false);
    expect(route.refusal).toContain('quay.io');
  });

  it('makes every name local when no upstream is configured', () => {
    const plain = new Router(new Map(), 'docker.io');
    expect(plain.route({ name: 'alpine' })).toMatchObject({ storeName: 'library/alpine', local: true });
    expect(plain.route({ name: 'my.org/app' })).toMatchObject({ storeName: 'my.org/app', local: true });
  });
});
