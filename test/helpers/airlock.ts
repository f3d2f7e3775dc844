/**
 * Starts airlock in-process on 127.0.0.1 with a port of its own, from YAML text (as an operator
 * writes mirror.yml), and stops it.
 */
import { parseConfig } from '../../src/config/load.js';
import { createAirlock, type Airlock } from '../../src/app/compose.js';
import { createLogger } from '../../src/logging/logger.js';
import { Writable } from 'node:stream';
import { expect } from 'vitest';

export interface RunningAirlock extends Airlock {
  url: string;
  host: string;
  port: number;
  /** Log lines written so far (JSON objects). */
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export async function startAirlock(yaml: string, opts: { baseDir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunningAirlock> {
  const config = parseConfig(yaml, { baseDir: opts.baseDir ?? process.cwd(), env: opts.env ?? {} });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      if (logs.length > 20_000) logs.splice(0, logs.length - 20_000);
      cb();
    },
  });
  const logger = createLogger({ level: config.log.level, destination: sink });
  const airlock = await createAirlock(config, logger, { serve: true });
  await airlock.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (airlock.app.server.address() as { port: number }).port;
  return { ...airlock, url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, port, logs, stop: () => airlock.close() };
}

/**
 * Waits until no fill is in flight: a client has its last byte once the blob is verified, and
 * the commit (after room is made for it) may follow a moment later.
 */
export async function fillsSettled(reg: Airlock): Promise<void> {
  const until = Date.now() + 15_000;
  while (reg.registry.fillsInFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  expect(reg.registry.fillsInFlight).toBe(0);
}
