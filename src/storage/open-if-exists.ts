import { open, type FileHandle } from 'node:fs/promises';

/** A missing file, or a path through something that is not a directory. */
export function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Opens a file, or undefined when it (or a directory on its path) does not exist. */
export async function openIfExists(file: string, flags: string): Promise<FileHandle | undefined> {
  try {
    return await open(file, flags);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}
