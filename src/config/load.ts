import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from './config-error.js';
import { deepFreeze } from './deep-freeze.js';
import { checkConfig, configSchema, formatIssues, type Config } from './schema.js';

export { ConfigError };

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces ${VAR} and ${VAR:-default} in string values (not in the YAML text, so a secret with
 * YAML metacharacters cannot change the document's structure).
 */
function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, at: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`${at.join('.') || '(top level)'}: environment variable ${name} is not set`);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...at, String(i)]));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, [...at, k])]));
  }
  return value;
}

/** Drops keys whose value became an empty string from an optional ${VAR}, so "unset" means "absent". */
function dropEmpty(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropEmpty);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== '').map(([k, v]) => [k, dropEmpty(v)]));
  }
  return value;
}

/** Parses and validates configuration text. `baseDir` anchors relative paths (the config file's folder). */
export function parseConfig(text: string, opts: { baseDir: string; env?: NodeJS.ProcessEnv; source?: string }): Config {
  const source = opts.source ?? 'configuration';
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0] ? ` at line ${e.linePos[0].line}` : '';
    throw new ConfigError(`${source}: invalid YAML${line}: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${source}: expected a mapping of keys at the top level`);
  const substituted = dropEmpty(substituteEnv(raw, opts.env ?? process.env, []));
  const parsed = configSchema.safeParse(substituted);
  if (!parsed.success) throw new ConfigError(`${source}: ${formatIssues(parsed.error)}`);
  const config = parsed.data;
  const problem = checkConfig(config);
  if (problem) throw new ConfigError(`${source}: ${problem}`);
  config.storage.root = path.resolve(opts.baseDir, config.storage.root);
  for (const u of Object.values(config.upstreams)) if (u.ca) u.ca = path.resolve(opts.baseDir, u.ca);
  config.import.trust = config.import.trust.map((f) => path.resolve(opts.baseDir, f));
  if (config.audit.file !== undefined && config.audit.file !== '-') config.audit.file = path.resolve(opts.baseDir, config.audit.file);
  return deepFreeze(config);
}

export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`cannot read configuration ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
  }
  return parseConfig(text, { baseDir: path.dirname(path.resolve(file)), env, source: file });
}
