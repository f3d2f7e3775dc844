#!/usr/bin/env node
/**
 * The airlock command. Only this file calls process.exit: a usage or input error prints one line
 * and exits 2; anything else exits 1 (with the stack under --debug).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { serve } from './serve.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const HELP = `airlock: a pull-through caching mirror for container registries

Usage:
  airlock serve [--config FILE]     serve the registry API (default config ./mirror.yml)
  airlock --version | --help

Options:
  -c, --config FILE   configuration file (default ./mirror.yml)
      --debug         print stacks on errors
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0] ?? 'bad arguments');
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`airlock ${version()}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  switch (command) {
    case 'serve':
      if (rest.length) throw new UsageError(`serve takes no arguments, got "${rest.join(' ')}"`);
      return serve({ configFile: values.config ?? 'mirror.yml' });
    case undefined:
      process.stderr.write(HELP);
      return 2;
    default:
      throw new UsageError(`unknown command "${command}" (try airlock --help)`);
  }
}

const debug = process.argv.includes('--debug');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const input = e instanceof UsageError || e instanceof ConfigError;
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`airlock: ${message.split('\n')[0]}\n`);
    if (debug && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
    process.exit(input ? 2 : 1);
  },
);
