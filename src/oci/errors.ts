/**
 * The OCI error code table (distribution-spec "Error Codes") and the domain errors that carry
 * those codes. Domain errors carry no HTTP: http/error-handler.ts turns a code into a status and
 * the `{"errors":[…]}` body.
 */
export type ErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'TAG_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID'
  | 'PAGINATION_NUMBER_INVALID'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_TIMEOUT'
  | 'UPSTREAM_BAD_RESPONSE'
  | 'INTERNAL';

export const ERROR_TABLE: Readonly<Record<ErrorCode, { status: number; message: string }>> = Object.freeze({
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 404, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  UPSTREAM_UNAVAILABLE: { status: 503, message: 'the upstream registry is unavailable' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'the upstream registry did not answer in time' },
  UPSTREAM_BAD_RESPONSE: { status: 502, message: 'the upstream registry sent an invalid response' },
  INTERNAL: { status: 500, message: 'internal server error' },
});

export interface MirrorErrorOptions {
  cause?: unknown;
  detail?: unknown;
  /** Response headers the answer needs (Retry-After on a 429). */
  headers?: Record<string, string>;
}

export class MirrorError extends Error {
  readonly code: ErrorCode;
  readonly detail?: unknown;
  readonly headers?: Record<string, string>;

  constructor(code: ErrorCode, message?: string, options?: MirrorErrorOptions) {
    super(message ?? ERROR_TABLE[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options?.detail !== undefined) this.detail = options.detail;
    if (options?.headers !== undefined) this.headers = options.headers;
  }
}

type Ctor = new (message?: string, options?: MirrorErrorOptions) => MirrorError;

function kind(code: ErrorCode): Ctor {
  return class extends MirrorError {
    constructor(message?: string, options?: MirrorErrorOptions) {
      super(code, message, options);
    }
  };
}

export class BlobUnknownError extends kind('BLOB_UNKNOWN') {}
export class BlobUploadInvalidError extends kind('BLOB_UPLOAD_INVALID') {}
export class BlobUploadUnknownError extends kind('BLOB_UPLOAD_UNKNOWN') {}
export class DigestInvalidError extends kind('DIGEST_INVALID') {}
export class ManifestBlobUnknownError extends kind('MANIFEST_BLOB_UNKNOWN') {}
export class ManifestInvalidError extends kind('MANIFEST_INVALID') {}
export class ManifestUnknownError extends kind('MANIFEST_UNKNOWN') {}
export class NameInvalidError extends kind('NAME_INVALID') {}
export class NameUnknownError extends kind('NAME_UNKNOWN') {}
export class SizeInvalidError extends kind('SIZE_INVALID') {}
export class TagInvalidError extends kind('TAG_INVALID') {}
export class UnauthorizedError extends kind('UNAUTHORIZED') {}
export class DeniedError extends kind('DENIED') {}
export class UnsupportedError extends kind('UNSUPPORTED') {}
export class TooManyRequestsError extends kind('TOOMANYREQUESTS') {}
export class RangeInvalidError extends kind('RANGE_INVALID') {}
export class PaginationInvalidError extends kind('PAGINATION_NUMBER_INVALID') {}
export class UpstreamUnavailableError extends kind('UPSTREAM_UNAVAILABLE') {}
export class UpstreamTimeoutError extends kind('UPSTREAM_TIMEOUT') {}
export class UpstreamBadResponseError extends kind('UPSTREAM_BAD_RESPONSE') {}

/** The bytes received do not hash to the digest they were asked for. */
export class DigestMismatchError extends MirrorError {
  constructor(readonly expected: string, readonly actual: string, options?: MirrorErrorOptions) {
    super('UPSTREAM_BAD_RESPONSE', `content does not match its digest: expected ${expected}, got ${actual}`, options);
  }
}

export function errorBody(code: ErrorCode | string, message: string, detail?: unknown): { errors: Array<{ code: string; message: string; detail?: unknown }> } {
  return { errors: [detail === undefined ? { code, message } : { code, message, detail }] };
}
