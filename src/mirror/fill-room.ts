/**
 * A fill's room under storage.maxSize (blob-fill.ts): asked for as soon as its size is known, so
 * eviction, if any is needed, runs while the bytes arrive; waited for before the commit, so the
 * store's blob bytes never cross the ceiling.
 */
import type { Logger } from '../logging/logger.js';
import type { Digest } from '../oci/digest.js';

/** Room in the store for new blob bytes (storage.maxSize), made before they are committed. */
export interface StoreSpace {
  /** Makes room for `bytes` more (evicting if need be); undefined when there is none to make. */
  reserve(bytes: number, digest: string): Promise<SpaceReservation | undefined>;
}

export interface SpaceReservation {
  /** The reserved bytes were stored, or not (failed, not committed): the reservation ends. */
  settle(stored: boolean): void;
}

/** Room when there is no limit. */
const UNLIMITED: SpaceReservation = { settle: () => undefined };

export class FillRoom {
  /** Room asked for as soon as the size was known. */
  #early: Promise<SpaceReservation | undefined> | undefined;

  constructor(
    /** Without it (no storage.maxSize), every verified fill is committed. */
    private readonly space: StoreSpace | undefined,
    private readonly digest: Digest,
    private readonly log: Logger,
  ) {}

  /** The upstream announced `bytes`: asks for them now. */
  ask(bytes: number): void {
    this.#early = this.#reserve(bytes);
  }

  /**
   * Room for the verified blob of `received` bytes: the reservation made when its size became
   * known or, refused then (other pulls may have finished since) or never asked (no
   * Content-Length), a new one. Undefined when there is none.
   */
  async toCommit(received: number): Promise<SpaceReservation | undefined> {
    return (await this.#early) ?? this.#reserve(received);
  }

  /** The fill failed or another replica publishes the blob: the early room is not used. */
  giveBack(): void {
    void this.#early?.then((r) => r?.settle(false));
  }

  /** Asks for room for `bytes`; undefined when there is none (or making it failed). */
  #reserve(bytes: number): Promise<SpaceReservation | undefined> {
    const space = this.space;
    if (!space) return Promise.resolve(UNLIMITED);
    return space.reserve(bytes, this.digest.toString()).catch((e: unknown) => {
      this.log.error({ digest: this.digest.toString(), err: (e as Error).message }, 'could not make room in the store');
      return undefined;
    });
  }
}
