import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import { parseDuration, parseListen, parseSize } from '../../../src/config/schema.js';

const base = { baseDir: '/etc/airlock', env: {} };

describe('parseConfig', () => {
  it('gives the documented defaults for an empty file', () => {
    const c = parseConfig('', base);
    expect(c.listen).toEqual({ address: '0.0.0.0:5000', host: '0.0.0.0', port: 5000 });
    expect(c.storage.root).toBe(path.resolve('/etc/airlock/data'));
    expect(c.log.level).toBe('info');
    expect(Object.isFrozen(c.storage)).toBe(true);
  });

  it('reads the contract keys', () => {
    const c = parseConfig('listen: "127.0.0.1:5055"\nstorage:\n  root: /var/lib/airlock\nlog:\n  level: debug\n', base);
    expect(c.listen.port).toBe(5055);
    expect(c.listen.host).toBe('127.0.0.1');
    expect(c.storage.root).toBe('/var/lib/airlock');
    expect(c.log.level).toBe('debug');
  });

  it('refuses an unknown key, naming it', () => {
    expect(() => parseConfig('storage:\n  rot: /x\n', base)).toThrow(/storage: unknown key "rot"/);
    expect(() => parseConfig('lissen: ":5000"\n', base)).toThrow(/unknown key "lissen"/);
  });

  it('refuses a wrong type with the key and the expected form', () => {
    expect(() => parseConfig('storage:\n  root: 5\n', base)).toThrow(/storage\.root: .*string/);
    expect(() => parseConfig('listen: "nowhere"\n', base)).toThrow(/listen: expected "host:port"/);
    expect(() => parseConfig('log:\n  level: loud\n', base)).toThrow(/log\.level/);
    expect(() => parseConfig('http:\n  shutdownTimeout: soon\n', base)).toThrow(/http\.shutdownTimeout: expected a duration/);
  });

  it('gives one line for invalid YAML', () => {
    let err: unknown;
    try { parseConfig('listen: [\n', base); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/invalid YAML/);
    expect((err as Error).message).not.toContain('\n');
  });

  it('substitutes ${VAR} and ${VAR:-default} in values, never in structure', () => {
    const env = { ROOT: '/srv/reg', WEIRD: 'a: b\n- c' };
    const c = parseConfig('storage:\n  root: ${ROOT}\nlisten: "${HOST:-127.0.0.1}:5001"\n', { baseDir: '/', env });
    expect(c.storage.root).toBe('/srv/reg');
    expect(c.listen.host).toBe('127.0.0.1');
    const d = parseConfig('storage:\n  root: /x/${WEIRD}\n', { baseDir: '/', env });
    expect(d.storage.root).toBe('/x/a: b\n- c');
  });

  it('names a missing environment variable and the key that uses it', () => {
    expect(() => parseConfig('storage:\n  root: ${NOPE}\n', base)).toThrow(/storage\.root: environment variable NOPE is not set/);
  });
});

describe('prefetch keys', () => {
  it('reads the contract: schedule, concurrency, platforms, references and pattern entries', () => {
    const c = parseConfig(
      'prefetch:\n  schedule: 6h\n  concurrency: 4\n  platforms: [linux/amd64, linux/arm64/v8]\n  images:\n    - alpine:3.20\n    - quay.io/x/y@sha256:' + 'a'.repeat(64) + '\n    - name: library/nginx\n      tags: ["1.27.*", ">=1.26 <2"]\n      newest: 5\n',
      base,
    );
    expect(c.prefetch.schedule).toBe(6 * 3_600_000);
    expect(c.prefetch.platforms).toEqual(['linux/amd64', 'linux/arm64/v8']);
    expect(c.prefetch.images).toHaveLength(3);
    expect(parseConfig('', base).prefetch).toEqual({ concurrency: 4, images: [] });
  });

  it('refuses bad references, platforms, names with tags and broken ranges, naming the key', () => {
    expect(() => parseConfig('prefetch:\n  images: ["Bad Ref"]\n', base)).toThrow(/prefetch\.images\.0: .*image reference/);
    expect(() => parseConfig('prefetch:\n  platforms: [amd64]\n', base)).toThrow(/prefetch\.platforms\.0: expected a platform/);
    expect(() => parseConfig('prefetch:\n  images:\n    - name: nginx:1.27\n', base)).toThrow(/prefetch\.images\.0/);
    expect(() => parseConfig('prefetch:\n  images:\n    - name: nginx\n      tags: [">=banana"]\n', base)).toThrow(/prefetch\.images\.0\.tags: ">=banana" is not a valid semver range/);
    expect(() => parseConfig('prefetch:\n  concurrency: 0\n', base)).toThrow(/prefetch\.concurrency/);
  });
});

describe('durations, sizes, listen', () => {
  it('parses durations', () => {
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration(10)).toBe(10_000);
    for (const bad of ['', '5', '5 m', 'm', '-1s', '1y']) expect(() => parseDuration(bad)).toThrow();
  });
  it('parses sizes', () => {
    expect(parseSize('200GiB')).toBe(200 * 2 ** 30);
    expect(parseSize('500MB')).toBe(500e6);
    expect(parseSize('1024')).toBe(1024);
    for (const bad of ['', 'GiB', '5 parsecs', '-1']) expect(() => parseSize(bad)).toThrow();
  });
  it('parses listen addresses', () => {
    expect(parseListen('[::1]:5000')).toEqual({ host: '::1', port: 5000 });
    expect(parseListen(':5000')).toEqual({ host: '0.0.0.0', port: 5000 });
    for (const bad of ['5000', 'host:', 'host:99999', 'a:b:c']) expect(() => parseListen(bad)).toThrow();
  });
});

describe('storage.driver s3 and fleet', () => {
  const s3 = 'storage:\n  driver: s3\n  s3:\n    endpoint: http://127.0.0.1:7480\n    bucket: mirror\n    prefix: site-a\n    accessKey: ${K}\n    secretKey: ${S}\n';

  it('reads the bucket, with secrets from the environment and the documented defaults', () => {
    const c = parseConfig(s3, { ...base, env: { K: 'key', S: 'secret' } });
    expect(c.storage.driver).toBe('s3');
    expect(c.storage.s3).toMatchObject({ endpoint: 'http://127.0.0.1:7480', bucket: 'mirror', prefix: 'site-a', accessKey: 'key', secretKey: 'secret', region: 'us-east-1', forcePathStyle: true, partSize: 16 * 2 ** 20 });
    expect(c.storage.redirect).toBe(false);
  });

  it('refuses an s3 driver without a bucket, a bad bucket or prefix, a lone key, and redirect or fleet without s3', () => {
    expect(() => parseConfig('storage:\n  driver: s3\n', base)).toThrow(/storage\.s3: required with storage\.driver: s3/);
    expect(() => parseConfig('storage:\n  driver: s3\n  s3:\n    bucket: Bad_Bucket\n', base)).toThrow(/storage\.s3\.bucket: expected an S3 bucket name/);
    expect(() => parseConfig('storage:\n  driver: s3\n  s3:\n    bucket: ok-bucket\n    prefix: /abs/\n', base)).toThrow(/storage\.s3\.prefix: expected a key prefix/);
    expect(() => parseConfig('storage:\n  driver: s3\n  s3:\n    bucket: ok-bucket\n    accessKey: k\n', base)).toThrow(/accessKey and secretKey go together/);
    expect(() => parseConfig('storage:\n  driver: s3\n  s3:\n    bucket: ok-bucket\n    partSize: 1MiB\n', base)).toThrow(/partSize: expected a part size between 5MiB and 5GiB/);
    expect(() => parseConfig('storage:\n  redirect: true\n', base)).toThrow(/storage\.redirect: needs storage\.driver: s3/);
    expect(() => parseConfig(`fleet:\n  listen: 127.0.0.1:5001\n  advertise: http://10.0.0.5:5001\n  secret: ${'x'.repeat(16)}\n`, base)).toThrow(/fleet: replicas share a bucket/);
    expect(() => parseConfig(`${s3}fleet:\n  listen: 127.0.0.1:5001\n  secret: ${'x'.repeat(16)}\n`, { ...base, env: { K: 'k', S: 's' } })).toThrow(/fleet\.advertise/);
  });

  it('refuses a fleet without fleet.secret (anyone reaching the port would read any blob), or with a short one', () => {
    const fleet = `${s3}fleet:\n  listen: 127.0.0.1:5001\n  advertise: http://10.0.0.5:5001\n`;
    const env = { ...base, env: { K: 'k', S: 's' } };
    expect(() => parseConfig(fleet, env)).toThrow(/^configuration: fleet\.secret: required with fleet/);
    expect(() => parseConfig(`${fleet}  secret: short\n`, env)).toThrow(/fleet\.secret: expected at least 16 characters/);
  });

  it('reads a fleet', () => {
    const c = parseConfig(`${s3}fleet:\n  listen: 0.0.0.0:5001\n  advertise: http://10.0.0.5:5001\n  leaseTTL: 30s\n  secret: \${F}\n`, { ...base, env: { K: 'k', S: 's', F: 'f'.repeat(32) } });
    expect(c.fleet).toMatchObject({ listen: { port: 5001 }, advertise: 'http://10.0.0.5:5001', leaseTTL: 30_000, secret: 'f'.repeat(32) });
  });
});
