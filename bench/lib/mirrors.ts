/** The two mirrors compared, started the same way: airlock and Distribution, on a store root. */
import { mkdtemp, rm } from 'node:fs/promises';
import { startDistribution } from '../../test/helpers/distribution.js';
import { READER, type TestUpstream } from '../../test/helpers/upstream.js';
import { startAirlockProcess } from './airlock-process.js';
import { baselineEntry } from './baseline.js';
import { airlockEntry, baselineRef } from './options.js';
import { workPath } from './work-dir.js';

/** The two sides of a case; `distribution` is the peer's side, which a baseline build takes with `--baseline`. */
export type Who = 'airlock' | 'distribution';

/** `name` says which one it is in error messages. */
export interface Mirror { name: string; url: string; host: string; pid?: number; stop(): Promise<void>; logs?(): string }

/** Distribution on `root`; in proxy mode (as the test suite's reader) when given an upstream. */
export async function startDistributionMirror(root: string, upstream?: TestUpstream): Promise<Mirror> {
  const d = await startDistribution({ root, ...(upstream ? { proxy: { remoteUrl: upstream.proxy.url, username: READER.user, password: READER.password } } : {}) });
  return { name: 'distribution', url: d.url, host: d.host, pid: d.pid, stop: () => d.stop(), logs: () => d.logs() };
}

export const starters: Record<Who, (root: string, upstream?: TestUpstream) => Promise<Mirror>> = {
  airlock: (root, upstream) => startAirlockProcess(airlockEntry, root, upstream),
  distribution: (root, upstream) => (baselineRef ? startAirlockProcess(baselineEntry(), root, upstream) : startDistributionMirror(root, upstream)),
};

/** `fn` on a mirror started on a fresh, empty store; stopped and removed afterwards. */
export async function coldMirror<T>(who: Who, up: TestUpstream, fn: (m: Mirror) => Promise<T>): Promise<T> {
  const root = await mkdtemp(workPath(`${who}-`));
  const m = await starters[who](root, up);
  try {
    return await fn(m);
  } catch (e) {
    // Say which side failed, with what it logged (airlock's error lines are already on stderr).
    throw new Error(`${m.name} on ${m.host}: ${(e as Error).message}${m.logs ? `\n${m.name} log: ${m.logs().slice(-4000)}` : ''}`, { cause: e });
  } finally {
    await m.stop();
    await rm(root, { recursive: true, force: true });
  }
}
