/**
 * Ed25519 signatures for bundles and inventories: raw 64-byte detached signatures over the
 * exact bytes signed, so the receiving side can check them with plain
 * `openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in FILE -sigfile FILE.sig`.
 *
 * A key is named by its id, `sha256:` + the hex sha256 of its public key's DER (SPKI) form:
 * `openssl pkey -pubin -in KEY.pub -outform DER | sha256sum` prints the same hex.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BundleError } from './bundle-error.js';

export interface PublicKey {
  id: string;
  key: KeyObject;
  /** Where it was read from, for messages. */
  file: string;
}

export interface SigningKey {
  id: string;
  key: KeyObject;
}

export function keyId(pub: KeyObject): string {
  return `sha256:${createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/** A new key pair as PEM (PKCS#8 private, SPKI public) with its id. */
export function generateSigningKey(): { privatePem: string; publicPem: string; id: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    id: keyId(publicKey),
  };
}

async function readKeyFile(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BundleError(`cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
  }
}

export async function readSigningKey(file: string): Promise<SigningKey> {
  const pem = await readKeyFile(file, 'signing key');
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new BundleError(`${file} is not a private key in PEM form (airlock keygen writes one)`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new BundleError(`${file} is an ${key.asymmetricKeyType ?? 'unknown'} key; airlock signs with ed25519 keys (airlock keygen)`);
  return { id: keyId(createPublicKey(key)), key };
}

export async function readPublicKey(file: string): Promise<PublicKey> {
  const pem = await readKeyFile(file, 'trusted key');
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new BundleError(`${file} is not a public key in PEM form (airlock keygen writes KEY.pub)`);
  }
  // createPublicKey accepts a private key too; a trust list holding one is a mistake worth naming.
  if (/PRIVATE KEY/.test(pem.toString('latin1'))) throw new BundleError(`${file} holds a private key; trust lists take the public half (KEY.pub)`);
  if (key.asymmetricKeyType !== 'ed25519') throw new BundleError(`${file} is an ${key.asymmetricKeyType ?? 'unknown'} key; airlock verifies ed25519 keys`);
  return { id: keyId(key), key, file };
}

export function signBytes(bytes: Uint8Array, key: SigningKey): Buffer {
  return sign(null, bytes, key.key);
}

export function verifyBytes(bytes: Uint8Array, signature: Uint8Array, key: PublicKey): boolean {
  if (signature.length !== 64) return false;
  return verify(null, bytes, key.key, signature);
}

/** The keys a bundle or inventory must be signed by; empty means signatures are not required. */
export class TrustedKeys {
  readonly #keys: Map<string, PublicKey>;

  constructor(keys: PublicKey[]) {
    this.#keys = new Map(keys.map((k) => [k.id, k]));
  }

  static async read(files: readonly string[]): Promise<TrustedKeys> {
    return new TrustedKeys(await Promise.all([...new Set(files)].map(readPublicKey)));
  }

  get required(): boolean {
    return this.#keys.size > 0;
  }

  /** For messages: the trusted ids, shortened. */
  describe(): string {
    return [...this.#keys.values()].map((k) => `${shortId(k.id)} (${k.file})`).join(', ');
  }

  /**
   * Why a document that says it was signed by `signer` (undefined: unsigned) cannot be trusted,
   * judged before its signature is at hand; undefined when it may proceed.
   */
  refuseSigner(what: string, signer: string | undefined): string | undefined {
    if (!this.required) return undefined;
    if (signer === undefined) return `${what} is not signed, and import.trust requires a signature by ${this.describe()}`;
    if (!this.#keys.has(signer)) return `${what} is signed by key ${shortId(signer)}, which is not trusted (trusted: ${this.describe()})`;
    return undefined;
  }

  /** Checks a detached signature by `signer`; returns why it fails, or undefined. */
  refuseSignature(what: string, signer: string | undefined, bytes: Uint8Array, signature: Uint8Array | undefined): string | undefined {
    const early = this.refuseSigner(what, signer);
    if (early || !this.required) return early;
    const key = this.#keys.get(signer as string) as PublicKey;
    if (!signature) return `${what} names signer ${shortId(key.id)} but carries no signature (stripped or truncated)`;
    if (!verifyBytes(bytes, signature, key)) return `${what}: the signature does not verify with key ${shortId(key.id)} (${key.file}); it was altered after signing`;
    return undefined;
  }
}

/** The first 16 hex digits of a key id: enough to tell keys apart in a message. */
export function shortId(id: string): string {
  return id.slice(0, 'sha256:'.length + 16);
}
