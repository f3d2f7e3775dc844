/**
 * The shape of an airlock command: one module per command under commands/, each exporting one
 * `Command` made with defineCommand(). main.ts lists them in one array and does the rest
 * (dispatch, parsing with the command's own options, --help, exit codes).
 *
 * A command module is imported for every invocation (to build --help and to dispatch), so it
 * imports only types and light modules statically; what its run() needs (the app, the config
 * parser, the jobs) it imports inside run().
 */
import { UsageError } from './usage-error.js';

/** One option: node:util parseArgs' spec, plus what --help says about it. */
export interface CommandOption {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly default?: string | boolean;
  /** The value's name in help (FILE, DURATION); string options only. */
  readonly value?: string;
  readonly help: string;
}

export type CommandOptions = Readonly<Record<string, CommandOption>>;

type OptionValue<T extends CommandOption> = T extends { type: 'boolean' }
  ? T extends { default: boolean } ? boolean : boolean | undefined
  : T extends { type: 'string' }
    ? T extends { default: string } ? string : string | undefined
    : string | boolean | undefined;

/** What parseArgs gives run(): one value per declared option, keyed by its long name. */
export type OptionValues<O extends CommandOptions> = { [K in keyof O]: OptionValue<O[K]> };

export interface Command<O extends CommandOptions = CommandOptions> {
  /** The word after `airlock`. */
  readonly name: string;
  /** One line for `airlock --help`. */
  readonly summary: string;
  /** What follows the name, for help: `[--config FILE] [IMAGE...]`. */
  readonly usage: string;
  /** The only options this command accepts (besides --help and --debug, which main.ts adds). */
  readonly options: O;
  /** Runs the command; resolves with the exit code. Throws UsageError for bad input (exit 2). */
  run(values: OptionValues<O>, positionals: string[]): Promise<number>;
}

/** Declares a command; `const` keeps the option types literal, so run() gets typed values. */
export function defineCommand<const O extends CommandOptions>(command: Command<O>): Command<O> {
  return command;
}

/** -c/--config: every command reads the configuration. */
export const configOption = {
  type: 'string',
  short: 'c',
  default: 'mirror.yml',
  value: 'FILE',
  help: 'configuration file (default ./mirror.yml)',
} as const satisfies CommandOption;

/** What main.ts accepts with every command, besides the command's own options. */
export const globalOptions = {
  debug: { type: 'boolean', help: 'print stacks on errors' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} as const satisfies CommandOptions;

/** Refuses arguments a command does not take, with one line. */
export function noArguments(name: string, positionals: string[]): void {
  if (positionals.length) throw new UsageError(`${name} takes no arguments, got "${positionals.join(' ')}"`);
}
