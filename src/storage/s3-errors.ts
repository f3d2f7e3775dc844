/** How the object store's errors read: the SDK reports a status, a name, or both. */

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export function isNotFound(e: unknown): boolean {
  const name = (e as Error).name;
  return statusOf(e) === 404 || name === 'NoSuchKey' || name === 'NotFound';
}

/** A conditional write lost: the object is there already (412), or a racing write is (409). */
export function isPreconditionFailed(e: unknown): boolean {
  const s = statusOf(e);
  return s === 412 || s === 409 || (e as Error).name === 'PreconditionFailed';
}
