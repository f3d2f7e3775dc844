import { parseDuration } from '../../config/units.js';
import { configOption, defineCommand } from '../command.js';
import { UsageError } from '../usage-error.js';

/** `airlock audit`: reads audit.file back as a table (or as JSON lines with --json). */
export const audit = defineCommand({
  name: 'audit',
  summary: 'show the audit log: pulls, pushes, deletes, removals, logins, reloads',
  usage: '[--since 24h] [--image NAME] [--user U] [--file FILE] [--json] [--config FILE]',
  options: {
    config: configOption,
    file: { type: 'string', value: 'FILE', help: 'read this audit file (a rotated one) instead of audit.file' },
    since: { type: 'string', value: 'WHEN', help: 'only records newer than a duration ago (24h, 7d) or a time (2026-12-01T00:00Z)' },
    image: { type: 'string', value: 'NAME', help: 'only records of this repository (name as asked or stored; NAME:tag or NAME@digest narrows)' },
    user: { type: 'string', value: 'U', help: 'only records of this user' },
    json: { type: 'boolean', help: 'print the matching records as JSON lines' },
  },
  async run(values, positionals) {
    if (positionals.length) throw new UsageError(`audit takes no arguments, got "${positionals.join(' ')}" (use --image NAME)`);
    const file = values.file ?? (await configuredFile(values.config));
    const since = values.since === undefined ? undefined : parseSince(values.since);
    const { readAudit, auditTable } = await import('../audit-table.js');
    const { records, skipped } = await readAudit(file, { since, image: values.image, user: values.user });
    if (values.json) for (const r of records) process.stdout.write(`${JSON.stringify(r)}\n`);
    else if (records.length === 0) process.stdout.write(`no audit records match in ${file}\n`);
    else process.stdout.write(auditTable(records));
    if (skipped > 0) process.stderr.write(`airlock: skipped ${skipped} lines of ${file} that are not audit records\n`);
    return 0;
  },
});

async function configuredFile(configFile: string): Promise<string> {
  const { loadConfig } = await import('../../config/load.js');
  const config = await loadConfig(configFile);
  const file = config.audit.file;
  if (file === undefined) throw new UsageError(`${configFile} sets no audit.file; name a file with --file`);
  if (file === '-') throw new UsageError(`${configFile} sends the audit log to stdout (audit.file: "-"); read it where the logs go, or name a file with --file`);
  return file;
}

/** A duration ago (24h, 7d, 1h30m: config/units.ts reads them as mirror.yml does), or a time. */
function parseSince(text: string): number {
  try {
    return Date.now() - parseDuration(text);
  } catch {
    const t = Date.parse(text);
    if (Number.isNaN(t)) throw new UsageError(`--since: expected a duration like 24h or 7d, or a time like 2026-12-01T00:00Z, got "${text}"`);
    return t;
  }
}
