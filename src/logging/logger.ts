import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Everything that can carry a credential. pino's redaction works on paths, so list the places
 * our own log calls and the request serializer put them.
 */
const REDACT = [
  'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'cookie', '*.cookie', 'req.headers.cookie', 'set-cookie', '*["set-cookie"]',
  'password', '*.password', 'token', '*.token', 'access_token', '*.access_token',
  'refresh_token', '*.refresh_token', 'secretKey', '*.secretKey', 'accessKey', '*.accessKey',
];

/** Logs go to stdout (serve) or, for the CLI's jobs whose stdout is their report, to stderr (fd 2). */
export function createLogger(opts: { level: string; destination?: DestinationStream | 1 | 2 }): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: 'airlock' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    typeof opts.destination === 'object' ? opts.destination : pino.destination({ fd: opts.destination ?? 1, sync: opts.destination === 2 }),
  );
}
