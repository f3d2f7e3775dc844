/** The clients the cases time: skopeo pulls, one blob GET, closed-loop request load. */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Pool, request } from 'undici';
import { skopeoCopy } from '../../test/helpers/skopeo.js';
import type { Mirror } from './mirrors.js';
import { S } from './options.js';
import { nextId } from './work-dir.js';

/** skopeo pull into tmpfs (so the client's disk is not what we measure); seconds. */
export async function timedPull(host: string, ref: string, creds?: string): Promise<number> {
  const dest = path.join('/dev/shm', `airlock-bench-${process.pid}-${nextId()}`);
  const t0 = process.hrtime.bigint();
  try {
    await skopeoCopy(`docker://${host}/${ref}`, `dir:${dest}`, { all: true, timeoutMs: 600_000, ...(creds ? { srcCreds: creds } : {}) });
    return Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
}

/** One blob GET read to the end; MB/s. */
export async function blobThroughput(m: Mirror, repo: string, digest: string, size: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await request(`${m.url}/v2/${repo}/blobs/${digest}`);
  let n = 0;
  for await (const c of r.body) n += (c as Buffer).length;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.statusCode !== 200 || n !== size) throw new Error(`${m.name}: blob GET gave ${r.statusCode} with ${n} bytes`);
  return size / secs / 1e6;
}

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';

/** Closed-loop load: `connections` workers, each one request at a time, for a bounded time; requests per second. */
export async function load(m: Mirror, urlPath: string, method: 'GET' | 'HEAD'): Promise<number> {
  const pool = new Pool(m.url, { connections: S.connections, pipelining: 1 });
  let ok = 0;
  let bad = 0;
  const end = Date.now() + S.loadSeconds * 1000;
  const worker = async () => {
    while (Date.now() < end) {
      const r = await pool.request({ path: urlPath, method, headers: { accept: ACCEPT } });
      await r.body.dump();
      if (r.statusCode === 200) ok++;
      else bad++;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: S.connections }, worker));
  const secs = (Date.now() - t0) / 1000;
  await pool.close();
  if (bad > 0) throw new Error(`${m.name}: ${bad} non-200 answers on ${method} ${urlPath}`);
  return ok / secs;
}
