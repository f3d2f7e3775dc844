// Numbers and times as people read them.

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[u]}`;
}

export const count = (n: number | null | undefined): string => (n === null || n === undefined ? '—' : n.toLocaleString('en'));

export function percent(r: number | null | undefined): string {
  return r === null || r === undefined ? '—' : `${(r * 100).toFixed(r >= 0.995 || r === 0 ? 0 : 1)} %`;
}

/** A time as "3 min ago" / "in 5 min", with the full time for a title. */
export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined) return 'never';
  const s = Math.round((now - ms) / 1000);
  const a = Math.abs(s);
  const span = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  if (a < 5) return 'just now';
  return s >= 0 ? `${span} ago` : `in ${span}`;
}

export function when(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function duration(seconds: number | null | undefined): string {
  if (!seconds) return '—';
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** sha256:0123456789ab… for tables; the full digest goes in a title and the copy buttons. */
export const shortDigest = (d: string): string => d.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, '$1…');

export function platformText(p: { os: string; architecture: string; variant?: string }): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}
