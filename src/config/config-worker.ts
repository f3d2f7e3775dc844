/**
 * Runs in a worker thread (load-isolated.ts): reads and validates the configuration, and posts
 * back the plain result or the error's one-line message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError } from './config-error.js';
import { loadConfig } from './load.js';

const { file, env } = workerData as { file: string; env: NodeJS.ProcessEnv };
try {
  parentPort!.postMessage({ config: await loadConfig(file, env) });
} catch (e) {
  parentPort!.postMessage({ error: (e as Error).message, configError: e instanceof ConfigError });
}
