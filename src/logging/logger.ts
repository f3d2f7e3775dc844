import { pino, type Logger, type DestinationStream } from 'pino';
import { scrub } from './redact.js';

export type { Logger };

/** Logs go to stdout (serve) or, for the CLI's jobs whose stdout is their report, to stderr (fd 2). */
export function createLogger(opts: { level: string; destination?: DestinationStream | 1 | 2 }): Logger {
  const logger = pino(
    {
      level: opts.level,
      base: { service: 'airlock' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Credentials are censored by scrub() (src/logging/redact.ts), not pino's path redaction.
      formatters: { level: (label) => ({ level: label }), log: scrub, bindings: scrub },
    },
    typeof opts.destination === 'object' ? opts.destination : pino.destination({ fd: opts.destination ?? 1, sync: opts.destination === 2 }),
  );
  // pino applies the bindings formatter to the root's bindings only; children (fastify's per
  // request among them) inherit this child(), so theirs are scrubbed too.
  type Child = (this: Logger, bindings: Record<string, unknown>, options?: object) => Logger;
  const child = logger.child as unknown as Child;
  const scrubbed: Child = function (bindings, options) {
    return child.call(this, scrub(bindings), options);
  };
  logger.child = scrubbed as unknown as Logger['child'];
  return logger;
}
