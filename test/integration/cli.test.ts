/**
 * The airlock command as an operator meets it: `serve` starts on the configured port and stops
 * cleanly on SIGTERM; bad input is one line and a non-zero exit.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AIRLOCK_BIN, runAirlock } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

const BIN = AIRLOCK_BIN;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-cli-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const airlock = (args: string[]) => runAirlock(args);

async function config(name: string, text: string): Promise<string> {
  const f = path.join(work, name);
  await writeFile(f, text);
  return f;
}

describe('airlock CLI', () => {
  it('serves on the configured port and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const cfg = await config('ok.yml', `listen: "127.0.0.1:${port}"\nstorage:\n  root: ./data-ok\n`);
    const child = spawn(process.execPath, [BIN, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    const until = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < until) {
      try {
        const r = await request(`http://127.0.0.1:${port}/v2/`);
        status = r.statusCode;
        expect(r.headers['docker-distribution-api-version']).toBe('registry/2.0');
        expect(await r.body.json()).toEqual({});
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(status).toBe(200);
    // The console used: its index's worker thread must not keep the process from ending.
    const list = await request(`http://127.0.0.1:${port}/ui/api/repositories`);
    expect(((await list.body.json()) as { total: number }).total).toBe(0);
    child.kill('SIGTERM');
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 15 s after SIGTERM'), 15_000))])).toBe(0);
    // One JSON line per request, and the relative root taken from the config file's folder.
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.msg === 'request')).toMatchObject({ method: 'GET', url: '/v2/', status: 200 });
    expect(lines.find((l) => l.msg === 'airlock serving')).toMatchObject({ root: path.join(work, 'data-ok') });
  });

  it('refuses a bad config with one line naming the key, exit 2', async () => {
    for (const [text, pattern] of [
      ['storage:\n  rooot: /x\n', /storage: unknown key "rooot"/],
      ['listen: 5000\n', /listen: .*string/],
      ['upstreams:\n  docker.io:\n    url: ftp://x\n', /upstreams\.docker\.io\.url/],
      ['cache:\n  tagTTL: soon\n', /cache\.tagTTL: expected a duration/],
      ['upstreams:\n  ghcr.io:\n    url: https://ghcr.io\n', /defaultUpstream: "docker.io" is not one of the configured upstreams/],
      ['listen: [\n', /invalid YAML/],
    ] as const) {
      const r = await airlock(['serve', '--config', await config('bad.yml', text)]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const missing = await airlock(['serve', '--config', path.join(work, 'nope.yml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read configuration .*nope\.yml: no such file/);
  });

  it('refuses a fleet port without fleet.secret with one line naming the key, before listening', async () => {
    // Without the secret, anyone who reached the fleet port read any blob (Range too).
    const fleetPort = await freePort();
    const r = await airlock(['serve', '--config', await config('fleet.yml', [
      'listen: "127.0.0.1:0"',
      'storage:\n  driver: s3\n  root: ./spool-fleet\n  s3:\n    endpoint: http://127.0.0.1:9\n    bucket: mirror',
      `fleet:\n  listen: 127.0.0.1:${fleetPort}\n  advertise: http://127.0.0.1:${fleetPort}`,
      '',
    ].join('\n'))]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^airlock: .*fleet\.secret: required with fleet/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a port in use and an unwritable store root with one line, exit 1', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await airlock(['serve', '--config', await config('busy.yml', `listen: "127.0.0.1:${port}"\nstorage:\n  root: ./data-busy\n`)]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(`airlock: cannot listen on 127.0.0.1:${port}: the port is in use`);
    } finally {
      blocker.close();
    }
    const file = path.join(work, 'a-file');
    await writeFile(file, 'x');
    await chmod(file, 0o444);
    const r = await airlock(['serve', '--config', await config('ro.yml', `listen: "127.0.0.1:0"\nstorage:\n  root: ${file}/store\n`)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^airlock: storage\.root .* is not writable/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('answers usage errors with one line and exit 2', async () => {
    expect((await airlock(['frobnicate'])).stderr).toMatch(/unknown command "frobnicate"/);
    expect((await airlock(['frobnicate'])).code).toBe(2);
    expect((await airlock(['serve', '--nope'])).code).toBe(2);
    expect((await airlock(['--version'])).stdout).toMatch(/^airlock \d+\.\d+\.\d+/);
  });

  it('airlock --help lists every command, du included', async () => {
    const r = await airlock(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['serve', 'prefetch', 'freeze', 'import', 'verify', 'gc', 'du']) expect(r.stdout).toMatch(new RegExp(`^  airlock ${c} `, 'm'));
  });

  it('airlock gc --help shows gc\'s usage and options, and only those', async () => {
    const r = await airlock(['gc', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: airlock gc /);
    for (const o of ['--dry-run', '--delete-untagged', '--grace DURATION', '-c, --config FILE']) expect(r.stdout).toContain(o);
    expect(r.stdout).not.toContain('--repair');
  });

  it('refuses a flag the command does not declare with one line and exit 2', async () => {
    for (const args of [['serve', '--force'], ['gc', '--repair'], ['du', '--out', 'x.tar']]) {
      const r = await airlock(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^airlock: ${args[0]}: unknown option ${args[1]}`));
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
