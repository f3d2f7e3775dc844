#!/usr/bin/env -S node --max-semi-space-size=4 --initial-old-space-size=64 --liftoff-only --no-concurrent-recompilation
/**
 * The airlock command. Only this file calls process.exit: a usage or input error prints one line
 * and exits 2; anything else exits 1 (with the stack under --debug).
 * The shebang's Node flags keep memory down and match every launcher: see bench/PERFORMANCE.md#node-flags.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { BundleError } from '../jobs/bundle-error.js';
import { ReadOnlyStoreError } from '../storage/read-only-driver.js';
import { globalOptions, type Command, type CommandOptions, type OptionValues } from './command.js';
import { audit } from './commands/audit.js';
import { du } from './commands/du.js';
import { freeze } from './commands/freeze.js';
import { gc } from './commands/gc.js';
import { importBundle } from './commands/import.js';
import { load } from './commands/load.js';
import { inventory } from './commands/inventory.js';
import { keygen } from './commands/keygen.js';
import { prefetch } from './commands/prefetch.js';
import { save } from './commands/save.js';
import { serve } from './commands/serve.js';
import { verify } from './commands/verify.js';
import { commandHelp, generalHelp } from './help.js';
import { UsageError } from './usage-error.js';
import { airlockVersion } from '../runtime/version.js';

/** Every command, in the order `airlock --help` lists them: a new command is a file and a line here. */
const COMMANDS: readonly Command[] = [serve, prefetch, freeze, importBundle, load, save, verify, gc, du, audit, keygen, inventory];

/** parseArgs with only the given options (strict), errors as one-line usage errors. */
function parse(args: string[], options: CommandOptions, command?: string) {
  const spec = Object.fromEntries(Object.entries(options).map(([name, o]) => [name, {
    type: o.type,
    ...(o.short === undefined ? {} : { short: o.short }),
    ...(o.default === undefined ? {} : { default: o.default }),
  }]));
  try {
    return parseArgs({ args, options: spec, allowPositionals: command !== undefined, strict: true });
  } catch (e) {
    const message = (e as Error).message.split('\n')[0] ?? 'bad arguments';
    const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
    if (unknown) throw new UsageError(command ? `${command}: unknown option ${unknown} (airlock ${command} --help lists its options)` : `unknown option ${unknown} (a command's options go after it; try airlock --help)`);
    throw new UsageError(command ? `${command}: ${message}` : message);
  }
}

async function main(argv: string[]): Promise<number> {
  // File system calls run on libuv's pool (4 threads by default); walks over tens of thousands
  // of files (gc, verify, freeze) and many concurrent blob reads wait on it. Set before any use.
  process.env.UV_THREADPOOL_SIZE ??= '16';
  // Before the command only --help, --version and --debug; everything after it is the command's.
  const at = argv.findIndex((a) => !a.startsWith('-'));
  const top = parse(at < 0 ? argv : argv.slice(0, at), { ...globalOptions, version: { type: 'boolean', short: 'v', help: '' } }).values;
  if (top.version) {
    process.stdout.write(`airlock ${airlockVersion()}\n`);
    return 0;
  }
  if (at < 0) {
    (top.help ? process.stdout : process.stderr).write(generalHelp(COMMANDS));
    return top.help ? 0 : 2;
  }
  const name = argv[at];
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UsageError(`unknown command "${name}" (try airlock --help)`);
  const { values, positionals } = parse(argv.slice(at + 1), { ...command.options, ...globalOptions }, command.name);
  if (top.help || values.help) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  return command.run(values as OptionValues<CommandOptions>, positionals);
}

// A command's modules are loaded when it runs (see command.ts): `airlock prefetch` and friends
// do not pay for the HTTP server's modules, nor `--version` and `--help` for any.
const debug = process.argv.includes('--debug');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const input = e instanceof UsageError || e instanceof ConfigError || e instanceof BundleError || e instanceof ReadOnlyStoreError;
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`airlock: ${message.split('\n')[0]}\n`);
    if (debug && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
    process.exit(input ? 2 : 1);
  },
);
