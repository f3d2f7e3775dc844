/** The units of mirror.yml's values: durations, byte sizes, listen addresses. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** "10m", "90s", "1h30m", "500ms" or a number of seconds → milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`expected a duration like "5m", got ${value}`);
    return value * 1000;
  }
  const s = value.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(s)) throw new TypeError(`expected a duration like "30s", "5m" or "1h30m", got "${value}"`);
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
  return total;
}

/** "200GiB", "512MB", "1048576" → bytes. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`expected a size like "200GiB", got ${value}`);
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = SIZE_UNITS[(m?.[2] ?? 'x').toLowerCase()];
  if (!m || unit === undefined) throw new TypeError(`expected a size like "200GiB" or "500MB", got "${value}"`);
  return Math.floor(Number(m[1]) * unit);
}

/** host:port, [v6]:port or :port. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new TypeError(`expected "host:port" such as "0.0.0.0:5000", got "${value}"`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}
