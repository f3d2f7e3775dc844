import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config/schema.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** When the certificate (the first in tls.cert: the server's own) expires, in Unix seconds. */
  notAfter: number;
}

/** TLS files, checked to form a usable key pair before they replace anything. */
export async function readTls(tls: NonNullable<Config['tls']>): Promise<TlsFiles> {
  const read = async (what: 'cert' | 'key') => {
    try {
      return await readFile(tls[what]);
    } catch (e) {
      throw new Error(`tls.${what}: cannot read ${tls[what]}: ${(e as Error).message}`, { cause: e });
    }
  };
  const files = { cert: await read('cert'), key: await read('key') };
  try {
    createSecureContext(files);
  } catch (e) {
    throw new Error(`tls: ${tls.cert} and ${tls.key} are not a usable certificate and key: ${(e as Error).message}`, { cause: e });
  }
  return { ...files, notAfter: Date.parse(new X509Certificate(files.cert).validTo) / 1000 };
}
