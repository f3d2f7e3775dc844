import { readFileSync } from 'node:fs';

/** airlock's version, from package.json (for --version and bundle headers). */
export function airlockVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
