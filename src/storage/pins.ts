/**
 * Pinned images (.airlock/pins/): prefetched content that eviction and gc's --delete-untagged
 * keep. Outside docker/, so registry:2 and bundles never see them.
 */
import { Digest } from '../oci/digest.js';
import type { StorageDriver } from './driver.js';
import * as p from './paths.js';

export class Pins {
  constructor(private readonly driver: StorageDriver) {}

  /** Marks an image as pinned: eviction keeps it (prefetched content). */
  async pin(repo: string, d: Digest): Promise<void> {
    const path = p.pinPath(repo, d);
    if (!(await this.driver.stat(path))) await this.driver.writeFile(path, JSON.stringify({ name: repo, digest: d.toString() }));
  }

  /** Lets eviction take the image again (the console's unpin). */
  async unpin(repo: string, d: Digest): Promise<void> {
    await this.driver.delete(p.pinPath(repo, d));
  }

  /** Pinned images. */
  async list(): Promise<Array<{ name: string; digest: Digest }>> {
    const out: Array<{ name: string; digest: Digest }> = [];
    for (const f of (await this.driver.list(p.PINS)) ?? []) {
      const buf = await this.driver.readFile(`${p.PINS}/${f}`, 4096).catch(() => undefined);
      try {
        const j = JSON.parse(buf?.toString('utf8') ?? '') as { name: string; digest: string };
        const d = Digest.tryParse(j.digest);
        if (d && typeof j.name === 'string') out.push({ name: j.name, digest: d });
      } catch {
        // A damaged pin file pins nothing.
      }
    }
    return out;
  }
}
