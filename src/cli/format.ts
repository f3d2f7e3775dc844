/** Human-readable numbers and tables for the CLI's output. */

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

/** A plain-text table with a header row, columns padded to their widest cell. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

/**
 * Progress for long jobs: on a terminal one line rewritten in place; otherwise a line every
 * `everyMs` (logs and CI keep their history readable).
 */
export class ProgressLine {
  #last = 0;
  #shown = false;

  constructor(private readonly out: NodeJS.WriteStream, private readonly everyMs = 10_000) {}

  get isTTY(): boolean {
    return this.out.isTTY === true;
  }

  update(text: string, force = false): void {
    const now = Date.now();
    if (this.isTTY) {
      if (!force && now - this.#last < 200) return;
      this.#last = now;
      this.out.write(`\r\x1b[2K${text}`);
      this.#shown = true;
      return;
    }
    if (!force && now - this.#last < this.everyMs) return;
    this.#last = now;
    this.out.write(`${text}\n`);
  }

  /** Ends the in-place line so what follows starts on a fresh one. */
  done(): void {
    if (this.isTTY && this.#shown) this.out.write('\n');
    this.#shown = false;
  }
}

/** "rate, ETA" from bytes done, bytes planned and the start time. */
export function rateAndEta(done: number, planned: number, startedAt: number, now = Date.now()): string {
  const secs = Math.max(0.001, (now - startedAt) / 1000);
  // A first sample (a bundle's small header, a few ms in) gives a rate of KiB/s and an ETA of hours.
  if (secs < 1 && done < planned / 20) return 'starting';
  const rate = done / secs;
  const eta = rate > 0 && planned > done ? ((planned - done) / rate) * 1000 : 0;
  return `${formatBytes(rate)}/s, ETA ${planned > done ? formatDuration(eta) : '-'}`;
}
