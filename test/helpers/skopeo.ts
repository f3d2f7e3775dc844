import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SkopeoOptions {
  all?: boolean;
  creds?: string;
  srcCreds?: string;
  destCreds?: string;
  timeoutMs?: number;
  /** Verify TLS (default: off for our plain-http 127.0.0.1 registries). */
  tlsVerify?: boolean;
  certDir?: string;
  extraArgs?: string[];
}

function tls(opts: SkopeoOptions): string[] {
  const v = opts.tlsVerify ? 'true' : 'false';
  return [`--src-tls-verify=${v}`, `--dest-tls-verify=${v}`, ...(opts.certDir ? [`--src-cert-dir=${opts.certDir}`, `--dest-cert-dir=${opts.certDir}`] : [])];
}

/** `skopeo copy` (always --insecure-policy and --preserve-digests); rejects with skopeo's stderr. */
export async function skopeoCopy(src: string, dest: string, opts: SkopeoOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const args = ['copy', '--insecure-policy', '--preserve-digests', '--retry-times=0', ...tls(opts)];
  if (opts.all) args.push('--all');
  if (opts.creds) args.push(`--src-creds=${opts.creds}`, `--dest-creds=${opts.creds}`);
  if (opts.srcCreds) args.push(`--src-creds=${opts.srcCreds}`);
  if (opts.destCreds) args.push(`--dest-creds=${opts.destCreds}`);
  args.push(...(opts.extraArgs ?? []), src, dest);
  try {
    return await run('skopeo', args, { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 << 20, env: { ...process.env, HOME: process.env.HOME ?? '/root' } });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`skopeo copy ${src} ${dest} failed: ${(err.stderr ?? err.message).trim()}`, { cause: e });
  }
}

/** `skopeo inspect --raw`: the manifest bytes as served. */
export async function skopeoInspectRaw(ref: string, opts: SkopeoOptions = {}): Promise<Buffer> {
  const args = ['inspect', '--raw', `--tls-verify=${opts.tlsVerify ? 'true' : 'false'}`, ...(opts.creds ? [`--creds=${opts.creds}`] : []), ref];
  const { stdout } = await run('skopeo', args, { timeout: opts.timeoutMs ?? 60_000, encoding: 'buffer', maxBuffer: 16 << 20 });
  return stdout;
}

/**
 * Pulls `ref` (a docker:// reference) into skopeo's `dir:` layout (which takes every manifest
 * type unconverted) and returns the digest of the manifest pulled and of every blob and
 * instance manifest written, each re-hashed from the bytes on disk.
 */
export async function pullToLayout(ref: string, dir: string, opts: SkopeoOptions = {}): Promise<{ manifestDigest: string; blobs: string[] }> {
  await skopeoCopy(ref, `dir:${dir}`, opts);
  const hash = async (f: string) => `sha256:${createHash('sha256').update(await readFile(path.join(dir, f))).digest('hex')}`;
  const blobs: string[] = [];
  for (const f of await readdir(dir)) {
    if (/^[0-9a-f]{64}(\.manifest\.json)?$/.test(f)) blobs.push(await hash(f));
  }
  return { manifestDigest: await hash('manifest.json'), blobs };
}
