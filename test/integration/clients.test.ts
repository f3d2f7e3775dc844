/**
 * The real mirror configurations, end to end, with real clients: containerd (`ctr` against its
 * own containerd on a private socket, with a hosts.toml that makes airlock the mirror of
 * docker.io, so requests carry ?ns=docker.io) and podman (a registries.conf mirror for docker.io
 * and for ghcr.io with a path prefix, vfs storage). Both pull through airlock from the test
 * upstream, never from the internet.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { generateImage, generateIndex, type GeneratedImage } from '../helpers/images.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
let work: string;
let up: TestUpstream;
let airlock: RunningAirlock;
const img: Record<string, GeneratedImage> = {};

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-clients-'));
  up = await startTestUpstream();
  img.index = await generateIndex(path.join(work, 'g-index'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 2, layerSize: 200_000, format: 'oci' });
  img.docker = await generateImage(path.join(work, 'g-docker'), { layers: 2, layerSize: 300_000, format: 'docker' });
  await up.push(img.index, 'library/multi', '1.0');
  await up.push(img.docker, 'org/tool', '2.1');
  airlock = await startAirlock(
    [
      `storage:\n  root: ${path.join(work, 'store')}`,
      'log:\n  level: info',
      mirrorUpstreams(up),
    ].join('\n'),
  );
}, 300_000);

afterAll(async () => {
  await airlock?.stop();
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('containerd (ctr) with a hosts.toml mirror', () => {
  let containerd: ChildProcess | undefined;
  let dir: string;
  let sock: string;

  beforeAll(async () => {
    dir = path.join(work, 'containerd');
    sock = path.join(dir, 'containerd.sock');
    await mkdir(path.join(dir, 'certs.d/docker.io'), { recursive: true });
    await writeFile(
      path.join(dir, 'config.toml'),
      [
        'version = 2',
        `root = "${dir}/root"`,
        `state = "${dir}/state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = "${sock}"`,
        '[ttrpc]',
        `  address = "${sock}.ttrpc"`,
        '[debug]',
        `  address = "${sock}.debug"`,
      ].join('\n'),
    );
    await writeFile(
      path.join(dir, 'certs.d/docker.io/hosts.toml'),
      ['server = "https://registry-1.docker.io"', '', `[host."http://${airlock.host}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'),
    );
    containerd = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: 'ignore' });
    const until = Date.now() + 20_000;
    for (;;) {
      try {
        await run('ctr', ['--address', sock, 'version'], { timeout: 5000 });
        break;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }, 60_000);

  afterAll(async () => {
    if (containerd && containerd.exitCode === null) {
      const exited = new Promise((r) => containerd!.once('exit', r));
      containerd.kill('SIGTERM');
      await exited;
    }
  });

  it('pulls a multi-arch image through airlock, which sees ?ns=docker.io', async () => {
    up.proxy.reset();
    await run('ctr', ['--address', sock, '-n', 'airlock', 'images', 'pull', '--hosts-dir', path.join(dir, 'certs.d'), '--all-platforms', 'docker.io/library/multi:1.0'], { timeout: 120_000 });
    const { stdout } = await run('ctr', ['--address', sock, '-n', 'airlock', 'images', 'ls'], { timeout: 30_000 });
    expect(stdout).toContain('docker.io/library/multi:1.0');
    expect(stdout).toContain(img.index!.manifestDigest);
    const content = (await run('ctr', ['--address', sock, '-n', 'airlock', 'content', 'ls', '-q'], { timeout: 30_000 })).stdout;
    for (const b of img.index!.blobs) expect(content).toContain(b.digest);
    // Airlock answered with ?ns=docker.io and stored the image under its Docker Hub name.
    const urls = airlock.logs.filter((l) => l.msg === 'request').map((l) => String(l.url));
    expect(urls.some((u) => u.startsWith('/v2/library/multi/manifests/') && u.includes('ns=docker.io'))).toBe(true);
    const link = await readFile(path.join(airlock.config.storage.root, 'docker/registry/v2/repositories/library/multi/_manifests/tags/1.0/current/link'), 'utf8');
    expect(link).toBe(img.index!.manifestDigest);
    expect(up.proxy.blobBytes()).toBe(img.index!.blobs.reduce((s, b) => s + b.size, 0));
  });
});

describe('podman with a registries.conf mirror (vfs storage)', () => {
  let dir: string;
  const podman = (args: string[]) =>
    run('podman', ['--root', path.join(dir, 'storage'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', ...args], {
      timeout: 180_000,
      env: { ...process.env, CONTAINERS_REGISTRIES_CONF: path.join(dir, 'registries.conf'), CONTAINERS_CONF: path.join(dir, 'containers.conf') },
    });

  beforeAll(async () => {
    dir = path.join(work, 'podman');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'containers.conf'), '[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n');
    await writeFile(
      path.join(dir, 'registries.conf'),
      [
        'unqualified-search-registries = ["docker.io"]',
        '',
        '[[registry]]',
        'prefix = "docker.io"',
        'location = "docker.io"',
        '[[registry.mirror]]',
        `location = "${airlock.host}"`,
        'insecure = true',
        '',
        '[[registry]]',
        'prefix = "ghcr.io"',
        'location = "ghcr.io"',
        '[[registry.mirror]]',
        `location = "${airlock.host}/ghcr.io"`,
        'insecure = true',
        '',
      ].join('\n'),
    );
  });

  it('pulls docker.io and ghcr.io images through airlock', async () => {
    up.proxy.reset();
    await podman(['pull', '--quiet', 'docker.io/library/multi:1.0']);
    const inspect = JSON.parse((await podman(['image', 'inspect', 'docker.io/library/multi:1.0'])).stdout) as Array<{ Digest: string; RepoDigests: string[] }>;
    expect(inspect[0]!.Digest).toBe(img.index!.manifestDigest);
    await podman(['pull', '--quiet', 'ghcr.io/org/tool:2.1']);
    const tool = JSON.parse((await podman(['image', 'inspect', 'ghcr.io/org/tool:2.1'])).stdout) as Array<{ Digest: string }>;
    expect(tool[0]!.Digest).toBe(img.docker!.manifestDigest);
    const link = await readFile(path.join(airlock.config.storage.root, 'docker/registry/v2/repositories/ghcr.io/org/tool/_manifests/tags/2.1/current/link'), 'utf8');
    expect(link).toBe(img.docker!.manifestDigest);
  });
});
