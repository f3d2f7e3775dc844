/**
 * A bundle that cannot be read or does not hold what it claims: one line naming the entry.
 * In a module of its own so that the CLI can recognise it without loading the tar code.
 */
export class BundleError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BundleError';
  }
}
