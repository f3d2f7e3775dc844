/**
 * Credentials out of log lines: any property named like one below, at any depth, in any letter
 * case, is written as "[redacted]". pino's own path redaction ran a redactor over every key of
 * every line for the wildcard paths (≈ 10 µs a request, most of a warm request's logging);
 * this walks only objects, and copies one only when it holds a secret.
 * See bench/PERFORMANCE.md#log-redaction.
 */
const SECRET_KEYS = new Set([
  'authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'password', 'secret', 'token',
  'access_token', 'refresh_token', 'secretkey', 'accesskey', 'secretaccesskey', 'sessiontoken',
]);
const CENSOR = '[redacted]';
/** Deeper than any object airlock logs; also what ends a walk of a cyclic object. */
const MAX_DEPTH = 8;

/** `value` with every secret property censored: the same reference when there is none. */
export function scrub<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  // Bytes have no property names worth a walk (and a Buffer has one per byte).
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const s = scrub(v, depth + 1);
      if (s !== v) (out ??= value.slice())[i] = s;
    }
    return (out ?? value) as T;
  }
  const obj = value as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const key in obj) {
    if (!Object.hasOwn(obj, key)) continue;
    const v = obj[key];
    const s = v !== undefined && SECRET_KEYS.has(key.toLowerCase()) ? CENSOR : scrub(v, depth + 1);
    if (s !== v) (out ??= copy(obj))[key] = s;
  }
  return (out ?? value) as T;
}

/** A shallow copy that keeps the prototype (an Error stays an Error, with its message and stack). */
function copy(o: Record<string, unknown>): Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(o);
  if (proto === Object.prototype || proto === null) return { ...o };
  return Object.create(proto as object, Object.getOwnPropertyDescriptors(o)) as Record<string, unknown>;
}
