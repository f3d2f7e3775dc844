import { open, type FileHandle } from 'node:fs/promises';
import { FileTooLargeError } from './driver.js';
import { isNotFound } from './open-if-exists.js';

/**
 * The whole content of a small file at a real path (`logical` names it in errors); undefined when
 * missing or a directory. Refuses files larger than maxBytes.
 */
export async function readWholeFile(file: string, logical: string, maxBytes: number): Promise<Buffer | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    if (isNotFound(e)) return undefined;
    if ((e as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
    throw e;
  }
  try {
    const { size } = await fh.stat();
    if (size > maxBytes) throw new FileTooLargeError(logical, size, maxBytes);
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === size ? buf : buf.subarray(0, off);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
    throw e;
  } finally {
    await fh.close();
  }
}
