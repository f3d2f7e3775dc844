import { AppendOffsetError } from './driver.js';
import { openIfExists } from './open-if-exists.js';
import { asBuffer, WRITE_BUFFER, writevAll } from './writev-all.js';

/**
 * Appends a stream to the file at a real path (`logical` names it in errors), all or nothing:
 * resolves with the new size, or undefined when the file is missing.
 */
export async function appendToFile(file: string, logical: string, source: AsyncIterable<Uint8Array>, expectedSize?: number): Promise<number | undefined> {
  const fh = await openIfExists(file, 'r+');
  if (!fh) return undefined;
  try {
    const { size } = await fh.stat();
    if (expectedSize !== undefined && size !== expectedSize) throw new AppendOffsetError(logical, size, expectedSize);
    let pos = size;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    // One batch is written while the next one is read, so the socket is not idle during a write.
    let inFlight: Promise<void> | undefined;
    const write = async (): Promise<void> => {
      if (inFlight) await inFlight;
      const bufs = pending;
      const n = pendingBytes;
      const at = pos;
      pending = [];
      pendingBytes = 0;
      pos += n;
      inFlight = writevAll(fh, bufs, n, at);
      // Its failure surfaces at the next await of inFlight; no unhandled rejection meanwhile.
      inFlight.catch(() => undefined);
    };
    try {
      for await (const chunk of source) {
        pending.push(asBuffer(chunk));
        pendingBytes += chunk.byteLength;
        if (pendingBytes >= WRITE_BUFFER) await write();
      }
      if (pendingBytes > 0) await write();
      await inFlight;
      return pos;
    } catch (e) {
      // All or nothing: a broken body leaves the file as it was, so the client can resend.
      await inFlight?.catch(() => undefined);
      await fh.truncate(size).catch(() => undefined);
      throw e;
    }
  } finally {
    await fh.close();
  }
}
