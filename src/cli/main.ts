#!/usr/bin/env -S node --max-semi-space-size=4 --liftoff-only --no-concurrent-recompilation
/**
 * The airlock command. Only this file calls process.exit: a usage or input error prints one line
 * and exits 2; anything else exits 1 (with the stack under --debug).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { BundleError } from '../jobs/bundle-error.js';

import { UsageError } from './usage-error.js';

const HELP = `airlock: a pull-through caching mirror for container registries

Usage:
  airlock serve [--config FILE]                 serve the registry API
  airlock prefetch [--config FILE] [IMAGE...]   warm the prefetch list (or the images named)
  airlock freeze --out FILE.tar [--since EARLIER.tar] [IMAGE...]
                                                write the store (or the images) as a bundle
  airlock import [--force] FILE.tar             verify a bundle and add it to the store
  airlock verify [--repair]                     re-hash every blob, check every link
  airlock gc [--dry-run] [--delete-untagged] [--grace 1h]
                                                delete blobs no manifest uses (safe beside serve)
  airlock --version | --help

Options:
  -c, --config FILE   configuration file (default ./mirror.yml)
  -o, --out FILE      freeze: the bundle to write (atomically)
      --since FILE    freeze: leave out what an earlier bundle (and its chain) holds
      --force         import: import images the upstreams' allow and deny lists deny
      --repair        verify: quarantine corrupt blobs and remove the links that need them
      --dry-run       gc: print what would be deleted, delete nothing
      --delete-untagged  gc: also delete manifests no tag, pin, index or subject needs
      --grace DURATION   gc: keep anything younger than this (default 1h)
      --debug         print stacks on errors
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  // File system calls run on libuv's pool (4 threads by default); walks over tens of thousands
  // of files (gc, verify, freeze) and many concurrent blob reads wait on it. Set before any use.
  process.env.UV_THREADPOOL_SIZE ??= '16';
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        out: { type: 'string', short: 'o' },
        since: { type: 'string' },
        repair: { type: 'boolean' },
        force: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        'delete-untagged': { type: 'boolean' },
        grace: { type: 'string' },
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
      return (await import('./serve.js')).serve({ configFile: values.config ?? 'mirror.yml' });
    case 'prefetch':
      return (await import('./prefetch.js')).prefetch({ configFile: values.config ?? 'mirror.yml', images: rest });
    case 'freeze':
      return (await import('./bundle-commands.js')).freeze({ configFile: values.config ?? 'mirror.yml', out: values.out, since: values.since, images: rest, version: version() });
    case 'import':
      if (rest.length > 1) throw new UsageError(`import takes one bundle, got ${rest.length}`);
      return (await import('./bundle-commands.js')).importBundle({ configFile: values.config ?? 'mirror.yml', file: rest[0], force: values.force === true });
    case 'verify':
      if (rest.length) throw new UsageError(`verify takes no arguments, got "${rest.join(' ')}"`);
      return (await import('./bundle-commands.js')).verify({ configFile: values.config ?? 'mirror.yml', repair: values.repair === true });
    case 'gc':
      if (rest.length) throw new UsageError(`gc takes no arguments, got "${rest.join(' ')}"`);
      return (await import('./bundle-commands.js')).gc({
        configFile: values.config ?? 'mirror.yml',
        dryRun: values['dry-run'] === true,
        deleteUntagged: values['delete-untagged'] === true,
        grace: values.grace,
      });
    case 'du':
      if (rest.length) throw new UsageError(`du takes no arguments, got "${rest.join(' ')}"`);
      return (await import('./bundle-commands.js')).du({ configFile: values.config ?? 'mirror.yml' });
    case undefined:
      process.stderr.write(HELP);
      return 2;
    default:
      throw new UsageError(`unknown command "${command}" (try airlock --help)`);
  }
}

// Commands are loaded when run: `airlock prefetch` and friends do not pay for the HTTP server's
// modules, nor `--version` for any.
const debug = process.argv.includes('--debug');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const input = e instanceof UsageError || e instanceof ConfigError || e instanceof BundleError;
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`airlock: ${message.split('\n')[0]}\n`);
    if (debug && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
    process.exit(input ? 2 : 1);
  },
);
