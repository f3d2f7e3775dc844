/**
 * The official OCI distribution-spec conformance suite (v1.1.1), kept beside the repository in
 * ../shared/conformance (read its README): built once with Debian's Go into a temp dir keyed by
 * the sources' hash, then run against a registry URL with all four workflows, as its run.sh does.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** In CI, shared/ is a read-only copy beside the clone; AIRLOCK_CONFORMANCE_DIR points elsewhere. */
export const CONFORMANCE_DIR = process.env.AIRLOCK_CONFORMANCE_DIR ?? path.resolve(REPO_ROOT, '../shared/conformance');

export interface ConformanceResult {
  passed: number;
  failed: number;
  skipped: number;
  /** Names of the failed specs. */
  failures: string[];
  /** The summary line run.sh prints: `conformance: P passed, F failed, S skipped`. */
  line: string;
  /** junit.xml and console.log of the run (removed by the caller when it passed). */
  reportDir: string;
}

/**
 * The suite's binary, built by its build.sh when this version of the sources has not been built
 * on this machine yet (≈ 40 s on 2 cores). The build writes only to the temp dir (build.sh
 * compiles in a mktemp dir of its own); concurrent test runs wait for one build under flock.
 */
export async function conformanceBinary(): Promise<string> {
  const build = path.join(CONFORMANCE_DIR, 'build.sh');
  if (!existsSync(build)) {
    throw new Error(`the OCI conformance suite is not at ${CONFORMANCE_DIR} (set AIRLOCK_CONFORMANCE_DIR to its folder)`);
  }
  const hash = createHash('sha256');
  for (const f of ['sources.tar.gz', 'build.sh']) hash.update(await readFile(path.join(CONFORMANCE_DIR, f)));
  const dir = path.join(os.tmpdir(), `airlock-oci-conformance-${hash.digest('hex').slice(0, 16)}`);
  const bin = path.join(dir, 'conformance.test');
  if (existsSync(bin)) return bin; // build.sh renames the binary into place only once it is complete
  await mkdir(dir, { recursive: true });
  try {
    await run('flock', [path.join(dir, 'build.lock'), 'bash', build, bin], { timeout: 600_000, maxBuffer: 16 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`building the OCI conformance suite failed: ${err.stderr?.slice(-4000) ?? err.message}`);
  }
  return bin;
}

export interface ConformanceOptions {
  /** OCI_NAMESPACE (default conformance/test) and OCI_CROSSMOUNT_NAMESPACE (default conformance/other). */
  namespace?: string;
  crossmountNamespace?: string;
  timeoutMs?: number;
}

/** Runs pull, push, content discovery and content management against `url`. */
export async function runConformance(url: string, opts: ConformanceOptions = {}): Promise<ConformanceResult> {
  const bin = await conformanceBinary();
  const reportDir = await mkdtemp(path.join(os.tmpdir(), 'airlock-oci-conformance-report-'));
  const env = {
    ...process.env,
    OCI_ROOT_URL: url,
    OCI_NAMESPACE: opts.namespace ?? 'conformance/test',
    OCI_CROSSMOUNT_NAMESPACE: opts.crossmountNamespace ?? 'conformance/other',
    OCI_AUTOMATIC_CROSSMOUNT: '0',
    OCI_TEST_PULL: '1',
    OCI_TEST_PUSH: '1',
    OCI_TEST_CONTENT_DISCOVERY: '1',
    OCI_TEST_CONTENT_MANAGEMENT: '1',
    OCI_HIDE_SKIPPED_WORKFLOWS: '0',
    OCI_DEBUG: '0',
    OCI_REPORT_DIR: reportDir,
  };
  // The binary exits non-zero when a spec fails; the verdict is read from junit.xml either way.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(bin, [], { cwd: reportDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => chunks.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.once('error', reject);
    child.once('close', () => {
      clearTimeout(timer);
      writeFile(path.join(reportDir, 'console.log'), Buffer.concat(chunks)).then(resolve, reject);
    });
  });
  const junit = await readFile(path.join(reportDir, 'junit.xml'), 'utf8').catch(() => undefined);
  if (junit === undefined) throw new Error(`the conformance suite wrote no junit.xml (see ${reportDir}/console.log)`);
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const failures: string[] = [];
  for (const m of junit.matchAll(/<testcase\b([^>]*)>/g)) {
    const attrs = m[1]!;
    const name = decodeXml(/\bname="([^"]*)"/.exec(attrs)?.[1] ?? '');
    const status = /\bstatus="([^"]*)"/.exec(attrs)?.[1];
    // The suite adds one passing "custom reporter" entry that is not a spec (run.sh does not count it).
    if (/custom reporter/.test(name)) continue;
    if (status === 'passed') passed++;
    else if (status === 'failed') {
      failed++;
      failures.push(name);
    } else if (status === 'skipped') skipped++;
  }
  const line = `conformance: ${passed} passed, ${failed} failed, ${skipped} skipped`;
  return { passed, failed, skipped, failures, line, reportDir };
}

function decodeXml(s: string): string {
  return s.replace(/&(quot|apos|lt|gt|amp|#\d+);/g, (_, e: string) =>
    e === 'quot' ? '"' : e === 'apos' ? "'" : e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'amp' ? '&' : String.fromCharCode(Number(e.slice(1))));
}

/** Removes a passing run's report; a failing run's is kept for its console.log. */
export async function removeReport(r: ConformanceResult): Promise<void> {
  if (r.failed === 0) await rm(r.reportDir, { recursive: true, force: true });
}
