/**
 * The replicas' coordination objects under .airlock/fleet/ (fill leases, tag revalidation
 * markers: fleet-lease.ts, mirror/fleet.ts), written with the driver's create-only write so two
 * replicas never both believe they took one.
 */
import type { StorageDriver } from './driver.js';
import { leaseName, parseLease } from './fleet-lease.js';
import * as p from './paths.js';

const OBJECT_MAX = 64 << 10;

export class FleetObjects {
  constructor(private readonly driver: StorageDriver) {}

  /** Creates a coordination object unless one exists: true when this call created it. */
  create(name: string, body: string): Promise<boolean> {
    return this.driver.createExclusive(p.fleetPath(name), body);
  }

  async read(name: string): Promise<string | undefined> {
    return (await this.driver.readFile(p.fleetPath(name), OBJECT_MAX))?.toString('utf8');
  }

  write(name: string, body: string): Promise<void> {
    return this.driver.writeFile(p.fleetPath(name), body);
  }

  delete(name: string): Promise<void> {
    return this.driver.deleteFile(p.fleetPath(name));
  }

  /**
   * Removes what writers left unfinished before `before`: an object store's multipart uploads
   * of killed replicas (not those of a fill whose lease is still renewed, however old), dead
   * fill leases and old tag markers.
   */
  async sweepUnfinished(before: Date): Promise<number> {
    const live = async (path: string): Promise<boolean> => {
      const f = p.parseLayoutPath(path);
      return f?.kind === 'blob' ? this.#leaseLive(leaseName(f.digest)) : false;
    };
    let count = (await this.driver.sweepUnfinished?.(before, live)) ?? 0;
    for (const dir of ['leases', 'tags']) {
      for (const name of (await this.driver.list(p.fleetPath(dir))) ?? []) {
        const path = p.fleetPath(`${dir}/${name}`);
        const st = await this.driver.stat(path);
        if (!st || st.isDirectory || st.modTime >= before) continue;
        if (dir === 'leases' && (await this.#leaseLive(`leases/${name}`))) continue;
        await this.driver.deleteFile(path);
        count++;
      }
    }
    return count;
  }

  /** Whether a fill lease has not expired (its holder renews it every third of its TTL). */
  async #leaseLive(name: string): Promise<boolean> {
    const lease = parseLease(await this.read(name).catch(() => undefined));
    return lease !== undefined && lease.expires > Date.now();
  }
}
