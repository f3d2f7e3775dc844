/**
 * Digests (image-spec "Digests"): `algorithm ":" encoded`. We accept the two registered
 * algorithms, lowercase hex of the exact length, and nothing else.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestInvalidError } from './errors.js';

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX = /^[a-f0-9]+$/;

export class Digest {
  /** Built once: a warm manifest's Digest is a cached object, spelled out on every request. */
  #text: string | undefined;

  private constructor(readonly algorithm: DigestAlgorithm, readonly hex: string) {}

  static parse(s: string): Digest {
    if (typeof s !== 'string' || s.length > 200) throw new DigestInvalidError('invalid digest: too long', { detail: { digest: String(s).slice(0, 80) } });
    if (!GRAMMAR.test(s)) throw new DigestInvalidError(`invalid digest "${s}"`, { detail: { digest: s } });
    const i = s.indexOf(':');
    const algorithm = s.slice(0, i);
    const hex = s.slice(i + 1);
    if (algorithm !== 'sha256' && algorithm !== 'sha512') {
      throw new DigestInvalidError(`unsupported digest algorithm "${algorithm}" (sha256 and sha512 are supported)`, { detail: { digest: s } });
    }
    if (hex.length !== HEX_LENGTH[algorithm] || !HEX.test(hex)) {
      throw new DigestInvalidError(`invalid ${algorithm} digest: expected ${HEX_LENGTH[algorithm]} lowercase hex characters`, { detail: { digest: s } });
    }
    return new Digest(algorithm, hex);
  }

  static tryParse(s: string): Digest | undefined {
    try {
      return Digest.parse(s);
    } catch {
      return undefined;
    }
  }

  static of(algorithm: DigestAlgorithm, hex: string): Digest {
    return Digest.parse(`${algorithm}:${hex}`);
  }

  toString(): string {
    return (this.#text ??= `${this.algorithm}:${this.hex}`);
  }

  toJSON(): string {
    return this.toString();
  }

  equals(other: Digest): boolean {
    return this.algorithm === other.algorithm && this.hex === other.hex;
  }
}

export function createHasher(algorithm: DigestAlgorithm = 'sha256'): Hash {
  return createHash(algorithm);
}

export function digestBytes(data: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return Digest.of(algorithm, createHash(algorithm).update(data).digest('hex'));
}

/** Passes bytes through unchanged while hashing them. */
export class DigestingStream extends Transform {
  readonly #hash: Hash;
  readonly #algorithm: DigestAlgorithm;
  #bytes = 0;
  #digest: Digest | undefined;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    super();
    this.#algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.#digest = Digest.of(this.#algorithm, this.#hash.digest('hex'));
    cb();
  }

  digest(): Digest {
    if (!this.#digest) throw new Error('digest() called before the stream ended');
    return this.#digest;
  }
}
