/**
 * Calls that concurrent callers share by key: while one is running, a second caller with the same
 * key gets the first one's promise instead of making the call again (a token request, a manifest
 * fill, a lookup in an object store that costs a request each).
 */
export class SharedCalls<V> {
  readonly #running = new Map<string, Promise<V>>();

  run(key: string, fn: () => Promise<V>): Promise<V> {
    const running = this.#running.get(key);
    if (running) return running;
    const call = fn().finally(() => {
      // forget() may have let a newer call take the key meanwhile; that one stays.
      if (this.#running.get(key) === call) this.#running.delete(key);
    });
    this.#running.set(key, call);
    return call;
  }

  /** Later callers of `key` make a call of their own (the caller just changed what it reads). */
  forget(key: string): void {
    this.#running.delete(key);
  }
}
