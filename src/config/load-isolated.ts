/**
 * loadConfig in a worker thread, for `airlock serve`: the YAML parser and the schema library
 * (zod with its locales) are loaded, used once and released with the worker's heap, instead of
 * staying in the serving process for its whole life (a third of the idle heap; see
 * bench/PERFORMANCE.md#configuration-loaded-in-a-worker-thread). The configuration is plain
 * data, so it crosses as a structured clone; it is frozen again here.
 */
import { Worker } from 'node:worker_threads';
import { ConfigError } from './config-error.js';
import { deepFreeze } from './deep-freeze.js';
import type { Config } from './schema.js';

/** The worker's module beside this one (config-worker.ts when run from the sources under tsx). */
const WORKER = new URL(`./config-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

type Reply = { config: Config } | { error: string; configError: boolean };

export function loadConfigIsolated(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  return new Promise<Config>((resolve, reject) => {
    let settled = false;
    const worker = new Worker(WORKER, { workerData: { file, env: { ...env } } });
    worker.once('message', (reply: Reply) => {
      settled = true;
      if ('config' in reply) resolve(deepFreeze(reply.config));
      else reject(reply.configError ? new ConfigError(reply.error) : new Error(reply.error));
    });
    worker.once('error', (e) => {
      if (!settled) reject(e);
      settled = true;
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the configuration loader stopped (exit code ${code}) before it answered`));
      settled = true;
    });
  });
}
