/** The text of `airlock --help` and `airlock <command> --help`, built from the commands themselves. */
import { globalOptions, type Command, type CommandOptions } from './command.js';

const INTRO = 'airlock: a pull-through caching mirror for container registries';

/** Two columns; a left cell too wide for its column puts its text on the next line. */
function columns(rows: [string, string][], width: number): string {
  const line = (s: string) => `${s.trimEnd()}\n`;
  return rows.map(([left, text]) => (left.length < width ? line(`  ${left.padEnd(width)}${text}`) : line(`  ${left}`) + line(`  ${' '.repeat(width)}${text}`))).join('');
}

function optionRows(options: CommandOptions): [string, string][] {
  return Object.entries(options).map(([name, o]) => [`${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`, o.help]);
}

/** `airlock --help`: every command's usage and summary. */
export function generalHelp(commands: readonly Command[]): string {
  const rows: [string, string][] = commands.map((c) => [`airlock ${c.name} ${c.usage}`, c.summary]);
  rows.push(['airlock COMMAND --help', "the command's options"], ['airlock --version | --help', '']);
  return `${INTRO}\n\nUsage:\n${columns(rows, 46)}\nOptions of every command:\n${columns(optionRows(globalOptions), 20)}`;
}

/** `airlock <command> --help`: its usage, what it does, and every option it accepts. */
export function commandHelp(command: Command): string {
  const options = optionRows({ ...command.options, ...globalOptions });
  const width = Math.max(20, ...options.map(([left]) => left.length + 2));
  return `Usage: airlock ${command.name} ${command.usage}\n\n${command.summary}\n\nOptions:\n${columns(options, width)}`;
}
