/**
 * Blob upload sessions of pushes (Distribution's _uploads/<id>/{data,startedat}, blobwriter.go):
 * bytes are appended to the session's data file until the client names the digest; the pusher
 * verifies it, and commit renames the file into blobs/ and only then links it.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import type { BlobStore } from './blob-store.js';
import type { StorageDriver } from './driver.js';
import type { LinkStore } from './link-store.js';
import * as p from './paths.js';

export class UploadStore {
  constructor(private readonly driver: StorageDriver, private readonly blobs: BlobStore, private readonly links: LinkStore) {}

  async create(repo: string, id: string): Promise<void> {
    await this.driver.writeFile(p.uploadStartedAtPath(repo, id), new Date().toISOString());
    await this.driver.writeFile(p.uploadDataPath(repo, id), '');
  }

  /** Bytes an upload holds, or undefined when there is no such upload. */
  async size(repo: string, id: string): Promise<number | undefined> {
    const st = await this.driver.stat(p.uploadDataPath(repo, id));
    return st && !st.isDirectory ? st.size : undefined;
  }

  /** Appends a chunk, all or nothing (driver.ts `append`); undefined when there is no such upload. */
  append(repo: string, id: string, source: AsyncIterable<Uint8Array>, expectedSize?: number): Promise<number | undefined> {
    return this.driver.append(p.uploadDataPath(repo, id), source, expectedSize);
  }

  open(repo: string, id: string): Promise<Readable | undefined> {
    return this.driver.readStream(p.uploadDataPath(repo, id));
  }

  /**
   * Publishes an upload whose bytes the caller verified to hash to `d`: made durable, renamed
   * into blobs/ (or dropped when the blob is already there, whose time is then refreshed so a
   * running gc keeps it), linked into the repository, and the session removed.
   */
  async commit(repo: string, id: string, d: Digest): Promise<void> {
    await this.blobs.adopt(p.uploadDataPath(repo, id), d);
    await this.links.linkBlob(repo, d);
    await this.driver.delete(p.uploadPath(repo, id));
  }

  async delete(repo: string, id: string): Promise<void> {
    await this.driver.delete(p.uploadPath(repo, id));
  }

  /** Upload sessions of a repository with when each was last written. */
  async list(repo: string): Promise<Array<{ id: string; modTime: Date }>> {
    const out: Array<{ id: string; modTime: Date }> = [];
    for (const id of (await this.driver.list(p.uploadsPath(repo))) ?? []) {
      const st = (await this.driver.stat(p.uploadDataPath(repo, id))) ?? (await this.driver.stat(p.uploadPath(repo, id)));
      if (st) out.push({ id, modTime: st.modTime });
    }
    return out;
  }

  /**
   * Removes a repository's sessions last written at or before `cutoff` (epoch ms), except those
   * `keep` holds on to (a request is using them); resolves with the ids removed.
   */
  async sweep(repo: string, cutoff: number, keep: (id: string) => boolean = () => false): Promise<string[]> {
    const removed: string[] = [];
    for (const u of await this.list(repo)) {
      if (u.modTime.getTime() > cutoff || keep(u.id)) continue;
      await this.delete(repo, u.id);
      removed.push(u.id);
    }
    return removed;
  }
}
