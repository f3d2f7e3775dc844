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
    try {
      for await (const chunk of source) {
        pending.push(asBuffer(chunk));
        pendingBytes += chunk.byteLength;
        if (pendingBytes >= WRITE_BUFFER) {
          await writevAll(fh, pending, pendingBytes, pos);
          pos += pendingBytes;
          pending = [];
          pendingBytes = 0;
        }
      }
      if (pendingBytes > 0) await writevAll(fh, pending, pendingBytes, pos);
      return pos + pendingBytes;
    } catch (e) {
      // All or nothing: a broken body leaves the file as it was, so the client can resend.
      await fh.truncate(size).catch(() => undefined);
      throw e;
    }
  } finally {
    await fh.close();
  }
}
