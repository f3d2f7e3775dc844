/**
 * The clients following a fill, and the pace they set it (blob-fill.ts).
 *
 * A fill runs at most PACE_AHEAD ahead of its fastest client, so that client is served from the
 * in-memory window (fill-window.ts) and the upstream transfer keeps the client's pace, as a
 * direct pull would. Without it, on a fast upstream the fill ran ahead and the client read nearly
 * every byte back from the staged file (see bench/PERFORMANCE.md#fill-pacing). Only clients that
 * took bytes within PACE_STALL_MS count: one that stops reading holds the fill up for no longer
 * than that, and the others (or none) set the pace from then on. A fill with no client
 * (prefetch, everyone left) runs free.
 */
import { WINDOW_BYTES } from './fill-window.js';

const PACE_AHEAD = WINDOW_BYTES / 2;
const PACE_STALL_MS = 250;

/** What the pace reads of one client's stream. */
export interface PacedClient {
  /** The next byte the stream hands on. */
  readonly pos: number;
  /** When the stream last took bytes (performance.now()). */
  readonly movedAt: number;
}

export class FillPace {
  readonly #followers = new Set<PacedClient>();
  /** Wakes the fill when it waits for its fastest client (wait()). */
  #wake: (() => void) | undefined;
  #stopped = false;

  /** Whether any client follows the fill now (checked per chunk, before any wait). */
  get followed(): boolean {
    return this.#followers.size > 0;
  }

  /** A client starts following (its stream now sets the fill's pace too). */
  attach(f: PacedClient): void {
    this.#followers.add(f);
  }

  /** A client's stream ended or was destroyed. */
  detach(f: PacedClient): void {
    this.#followers.delete(f);
    this.advanced();
  }

  /** A client took more bytes: the fill may go on if it waits for it. */
  advanced(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The fill is stopping: it no longer waits for anyone. */
  stop(): void {
    this.#stopped = true;
  }

  /** With `received` bytes in, waits while the fastest client still taking bytes is more than PACE_AHEAD behind. */
  async wait(received: number): Promise<void> {
    for (;;) {
      if (this.#stopped) return;
      const now = performance.now();
      let lead: PacedClient | undefined;
      for (const f of this.#followers) {
        if (now - f.movedAt < PACE_STALL_MS && (!lead || f.pos > lead.pos)) lead = f;
      }
      if (!lead || received - lead.pos <= PACE_AHEAD) return;
      const wait = PACE_STALL_MS - (now - lead.movedAt);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#wake = undefined;
          resolve();
        }, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}
