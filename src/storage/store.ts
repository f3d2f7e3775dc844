/**
 * The store as callers receive it: one driver and the parts that work on it, by role. Holds
 * them and nothing else; each part keeps the layout's invariants for what it writes.
 */
import { BlobStore, type BlobStoreOptions } from './blob-store.js';
import type { StorageDriver } from './driver.js';
import { FleetObjects } from './fleet-objects.js';
import { LinkStore } from './link-store.js';
import { LocalMarks } from './local-marks.js';
import { Pins } from './pins.js';
import { UploadStore } from './upload-store.js';

export type StoreOptions = BlobStoreOptions;

export class Store {
  /** Content-addressed bytes. */
  readonly blobs: BlobStore;
  /** Layer links, manifest revisions, tags, repository walks. */
  readonly links: LinkStore;
  /** Push upload sessions. */
  readonly uploads: UploadStore;
  /** Prefetched images eviction keeps. */
  readonly pins: Pins;
  /** Names that hold pushed or imported content. */
  readonly local: LocalMarks;
  /** Replicas' leases and markers. */
  readonly fleet: FleetObjects;

  constructor(readonly driver: StorageDriver, opts: StoreOptions) {
    this.blobs = new BlobStore(driver, opts);
    this.links = new LinkStore(driver, this.blobs);
    this.uploads = new UploadStore(driver, this.blobs, this.links);
    this.pins = new Pins(driver);
    this.local = new LocalMarks(driver);
    this.fleet = new FleetObjects(driver);
  }
}
