import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { parsePolicyRule } from '../../../src/config/schema.js';
import { UpstreamPolicy, storedNameJudge } from '../../../src/mirror/policy.js';
import { Router } from '../../../src/mirror/router.js';

const rule = (p: UpstreamPolicy, upstream: string, repository: string, tag?: string) => p.check(upstream, repository, tag)?.rule ?? (p.check(upstream, repository, tag) ? 'allow-list' : undefined);

describe('upstream allow and deny lists', () => {
  it('matches repository globs on the upstream name; ** spans components, * does not', () => {
    const p = new UpstreamPolicy({ 'docker.io': { deny: ['library/nginx', 'evil/*', 'bad/**'] } });
    expect(rule(p, 'docker.io', 'library/nginx')).toBe('library/nginx');
    expect(rule(p, 'docker.io', 'library/nginx', 'latest')).toBe('library/nginx');
    expect(rule(p, 'docker.io', 'library/nginx-unprivileged')).toBeUndefined();
    expect(rule(p, 'docker.io', 'evil/app')).toBe('evil/*');
    expect(rule(p, 'docker.io', 'evil/app/sub')).toBeUndefined();
    expect(rule(p, 'docker.io', 'bad/a/b/c')).toBe('bad/**');
    expect(rule(p, 'docker.io', 'library/alpine')).toBeUndefined();
  });

  it('applies lists per upstream: the key or any alias of the host, never another upstream', () => {
    const p = new UpstreamPolicy({ 'docker.io': { deny: ['library/nginx'] }, 'ghcr.io': { deny: ['org/secret'] } });
    expect(p.check('index.docker.io', 'library/nginx')?.upstream).toBe('docker.io');
    expect(p.check('ghcr.io', 'library/nginx')).toBeUndefined();
    expect(p.check('docker.io', 'org/secret')).toBeUndefined();
    expect(p.check('quay.io', 'library/nginx')).toBeUndefined();
  });

  it('denial messages name the upstream, the repository and tag, and the rule or the list', () => {
    const p = new UpstreamPolicy({ 'docker.io': { allow: ['library/*'], deny: ['library/nginx:1.25.*'] } });
    expect(p.check('docker.io', 'library/nginx', '1.25.3')).toEqual({
      upstream: 'docker.io', repository: 'library/nginx', tag: '1.25.3', list: 'deny', rule: 'library/nginx:1.25.*',
      message: 'docker.io library/nginx:1.25.3 is denied by upstreams.docker.io.deny "library/nginx:1.25.*"',
    });
    expect(p.check('docker.io', 'acme/app')).toEqual({
      upstream: 'docker.io', repository: 'acme/app', list: 'allow',
      message: 'docker.io acme/app is denied: no entry of upstreams.docker.io.allow matches it',
    });
  });

  it('tag globs and semver ranges deny tag pulls only; digests, blobs and tags/list (no tag) pass', () => {
    const p = new UpstreamPolicy({ 'docker.io': { deny: ['library/nginx:1.25.*', 'library/nginx:>=2 <3', 'library/redis:*-rc*'] } });
    expect(rule(p, 'docker.io', 'library/nginx', '1.25.9')).toBe('library/nginx:1.25.*');
    expect(rule(p, 'docker.io', 'library/nginx', '2.0.1')).toBe('library/nginx:>=2 <3');
    expect(rule(p, 'docker.io', 'library/nginx', 'v2.3')).toBe('library/nginx:>=2 <3');
    expect(rule(p, 'docker.io', 'library/nginx', '1.27.1')).toBeUndefined();
    expect(rule(p, 'docker.io', 'library/nginx', '3.0.0')).toBeUndefined();
    // A range never matches a tag that is not a version.
    expect(rule(p, 'docker.io', 'library/nginx', 'mainline')).toBeUndefined();
    expect(rule(p, 'docker.io', 'library/redis', '7.4-rc1')).toBe('library/redis:*-rc*');
    expect(rule(p, 'docker.io', 'library/nginx')).toBeUndefined();
  });

  it('deny wins over allow', () => {
    const p = new UpstreamPolicy({ 'docker.io': { allow: ['library/**'], deny: ['library/nginx', 'library/redis:6.*'] } });
    expect(p.check('docker.io', 'library/nginx', '1.27')?.list).toBe('deny');
    expect(p.check('docker.io', 'library/redis', '6.2')?.list).toBe('deny');
    expect(p.check('docker.io', 'library/redis', '7.4')).toBeUndefined();
    expect(p.check('docker.io', 'library/alpine', '3.20')).toBeUndefined();
  });

  it('an allow list denies everything else; an allow rule with a tag allows only those tags, and the repository by digest', () => {
    const p = new UpstreamPolicy({ 'docker.io': { allow: ['library/alpine', 'library/nginx:>=1.26'] } });
    expect(p.check('docker.io', 'library/alpine', 'edge')).toBeUndefined();
    expect(p.check('docker.io', 'library/nginx', '1.27.1')).toBeUndefined();
    expect(p.check('docker.io', 'library/nginx', '1.25.0')?.list).toBe('allow');
    expect(p.check('docker.io', 'library/nginx', 'latest')?.list).toBe('allow');
    expect(p.check('docker.io', 'library/nginx')).toBeUndefined();
    expect(p.check('docker.io', 'library/redis')?.list).toBe('allow');
    expect(p.check('docker.io', 'library/redis', '7')?.list).toBe('allow');
  });

  it('an empty allow list denies everything; no lists deny nothing', () => {
    expect(new UpstreamPolicy({ 'ghcr.io': { allow: [] } }).check('ghcr.io', 'org/app')?.list).toBe('allow');
    const none = new UpstreamPolicy({ 'ghcr.io': {}, 'docker.io': { deny: [] } });
    expect(none.empty).toBe(true);
    expect(none.check('ghcr.io', 'org/app', '1')).toBeUndefined();
  });

  it('judges stored names (an import) as a pull of them is routed; local names are not subject', () => {
    const p = new UpstreamPolicy({ 'docker.io': { deny: ['library/nginx'] }, 'ghcr.io': { deny: ['org/*:1.*'] } });
    const judge = storedNameJudge(p, new Router(new Map([['docker.io', 'docker.io'], ['ghcr.io', 'ghcr.io']]), 'docker.io', ['library/nginx-local/**', 'local/**']));
    expect(judge('library/nginx')?.rule).toBe('library/nginx');
    // Stored as written, it would still be what a pull of `nginx` gets.
    expect(judge('nginx')?.rule).toBe('library/nginx');
    expect(judge('ghcr.io/org/app', '1.4')?.rule).toBe('org/*:1.*');
    expect(judge('ghcr.io/org/app', '2.0')).toBeUndefined();
    expect(judge('local/nginx')).toBeUndefined();
    expect(judge('quay.io/library/nginx')).toBeUndefined();
  });

  it('takes its mode and lists from the configuration', () => {
    const c = parseConfig('upstreams:\n  docker.io:\n    url: http://127.0.0.1:1\n    deny: [library/nginx]\npolicy:\n  mode: report\n', { baseDir: '/', env: {} });
    const p = UpstreamPolicy.fromConfig(c);
    expect(p.mode).toBe('report');
    expect(p.check('docker.io', 'library/nginx')?.rule).toBe('library/nginx');
    expect(UpstreamPolicy.fromConfig(parseConfig('', { baseDir: '/', env: {} })).mode).toBe('enforce');
  });
});

describe('allow and deny rules in mirror.yml', () => {
  it('splits a rule at its first colon: a repository glob and a tag pattern', () => {
    expect(parsePolicyRule('docker.io', 'library/nginx')).toEqual({ repository: 'library/nginx' });
    expect(parsePolicyRule('docker.io', 'library/nginx:>=1.26 <2')).toEqual({ repository: 'library/nginx', tag: '>=1.26 <2' });
    expect(parsePolicyRule('docker.io', '**')).toEqual({ repository: '**' });
  });

  it('refuses, naming the key, rules that could never match what the upstream is asked for', () => {
    const load = (list: string) => () => parseConfig(`upstreams:\n  docker.io:\n    url: http://127.0.0.1:1\n    deny: [${list}]\n  ghcr.io:\n    url: http://127.0.0.1:1\n`, { baseDir: '/', env: {} });
    expect(load('nginx')).toThrow(/upstreams\.docker\.io\.deny\.0: "nginx" matches nothing: .*"library\/nginx"/);
    expect(load('"library/alpine", "docker.io/library/nginx"')).toThrow(/upstreams\.docker\.io\.deny\.1: .*without its host, such as "library\/nginx"/);
    expect(load('Library/Nginx')).toThrow(/lower case/);
    expect(load('"library/nginx:>=abc"')).toThrow(/not a valid semver range/);
    expect(load('"library/nginx:"')).toThrow(/not a valid tag pattern/);
    expect(() => parseConfig('upstreams:\n  ghcr.io:\n    url: http://127.0.0.1:1\n    allow: ["ghcr.io/org/app"]\ndefaultUpstream: ghcr.io\n', { baseDir: '/', env: {} })).toThrow(/upstreams\.ghcr\.io\.allow\.0: .*"org\/app"/);
  });
});
