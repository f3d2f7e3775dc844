/**
 * Starts CNCF Distribution (Debian's docker-registry) on 127.0.0.1: a plain registry on a
 * filesystem root, optionally with token auth (see token-server.ts) or in proxy mode.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { freePort } from './ports.js';

export const DISTRIBUTION_BIN = process.env.AIRLOCK_DISTRIBUTION_BIN ?? '/usr/bin/docker-registry';

export interface DistributionOptions {
  root: string;
  port?: number;
  auth?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  proxy?: { remoteUrl: string; username?: string; password?: string };
  deleteEnabled?: boolean;
  /** Catalog page limit (Distribution's catalog.maxentries). */
  catalogMaxEntries?: number;
  /** Distribution's s3 storage driver on this bucket instead of the filesystem (root is then unused). */
  s3?: { endpoint: string; region: string; bucket: string; rootdirectory: string; accessKey: string; secretKey: string };
  /**
   * Serve blob bodies itself instead of redirecting clients to the storage driver's URL
   * (Distribution's storage.redirect.disable; with s3 it redirects by default).
   */
  redirectDisabled?: boolean;
}

export interface Distribution {
  url: string;
  host: string;
  port: number;
  root: string;
  pid: number | undefined;
  stop(): Promise<void>;
  logs(): string;
}

export async function startDistribution(opts: DistributionOptions): Promise<Distribution> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDistributionOnce(opts, opts.port ?? (await freePort()));
    } catch (e) {
      // Another program took the port between the check and the bind: try another one.
      if (opts.port !== undefined || attempt >= 3 || !/address already in use/.test(String(e))) throw e;
    }
  }
}

async function startDistributionOnce(opts: DistributionOptions, port: number): Promise<Distribution> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-dist-cfg-'));
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    ...(opts.s3
      ? [
          '  s3:',
          `    accesskey: ${opts.s3.accessKey}`,
          `    secretkey: ${opts.s3.secretKey}`,
          `    region: ${opts.s3.region}`,
          `    regionendpoint: ${opts.s3.endpoint}`,
          `    bucket: ${opts.s3.bucket}`,
          `    rootdirectory: ${opts.s3.rootdirectory}`,
          '    secure: false',
          '    v4auth: true',
        ]
      : ['  filesystem:', `    rootdirectory: ${opts.root}`]),
    ...(opts.redirectDisabled ? ['  redirect:', '    disable: true'] : []),
    '  cache:',
    '    blobdescriptor: inmemory',
    '  delete:',
    `    enabled: ${opts.deleteEnabled ? 'true' : 'false'}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: airlock-test-secret',
    'catalog:',
    `  maxentries: ${opts.catalogMaxEntries ?? 1000}`,
  ];
  if (opts.auth) {
    lines.push('auth:', '  token:', `    realm: ${opts.auth.realm}`, `    service: ${opts.auth.service}`, `    issuer: ${opts.auth.issuer}`, `    rootcertbundle: ${opts.auth.rootCertBundle}`);
  }
  if (opts.proxy) {
    lines.push('proxy:', `  remoteurl: ${opts.proxy.remoteUrl}`);
    if (opts.proxy.username) lines.push(`  username: ${opts.proxy.username}`, `  password: ${opts.proxy.password ?? ''}`);
  }
  const cfg = path.join(dir, 'config.yml');
  await writeFile(cfg, `${lines.join('\n')}\n`);
  // Distribution's AWS SDK panics on AWS_CA_BUNDLE ("HTTPClient's transport unsupported
  // type") when it builds its s3 session; the tests' object store is plain HTTP anyway.
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  const child = spawn(DISTRIBUTION_BIN, ['serve', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let log = '';
  const keep = (b: Buffer) => {
    log = (log + b.toString()).slice(-64 * 1024);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${log}`);
    try {
      const r = await request(`${url}/v2/`);
      await r.body.dump();
      if (r.statusCode === 200 || r.statusCode === 401) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    port,
    root: opts.root,
    pid: child.pid,
    logs: () => log,
    stop: async () => {
      if (child.exitCode !== null) {
        await rm(dir, { recursive: true, force: true });
        return;
      }
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
