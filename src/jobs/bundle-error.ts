/**
 * A bundle that cannot be read or does not hold what it claims: one line naming the entry.
 * In a module of its own so that the CLI can recognise it without loading the tar code.
 */
export class BundleError extends Error {
  /** Content the store lacks (an image to save that is not there), not a bad file: a 404 over HTTP. */
  readonly missing: boolean;

  constructor(message: string, options?: { cause?: unknown; missing?: boolean }) {
    super(message, options);
    this.name = 'BundleError';
    this.missing = options?.missing ?? false;
  }
}
