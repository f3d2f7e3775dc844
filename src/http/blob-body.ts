/**
 * A blob's bytes as a reply body. A stored-bytes stream that lends recycled buffers
 * (storage/pooled-readable.ts) writes them straight to the response once fastify pipes it there,
 * and takes each buffer back when the response's write calls back: the socket (or TLS layer) has
 * consumed the bytes then. See bench/PERFORMANCE.md#recycled-read-buffers.
 */
import { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

/**
 * What http/ uses of a lending stream. Declared here because http/ does not import storage/
 * (eslint.config.js); PooledReadable has exactly these methods.
 */
interface Lending {
  lend(): Promise<{ bytes: Buffer; giveBack(reuse?: boolean): void } | undefined>;
  stopLending(): void;
  lendOnPipe(take: (dest: NodeJS.WritableStream, end: boolean) => boolean): unknown;
}

function lends(stream: Readable): stream is Readable & Lending {
  const s = stream as Readable & Partial<Lending>;
  return typeof s.lendOnPipe === 'function' && typeof s.lend === 'function' && typeof s.stopLending === 'function';
}

/** `stream`, set to write its lent buffers itself when it is piped into a response; any other stream as is. */
export function blobBody<T extends Readable>(stream: T): T {
  if (!lends(stream)) return stream;
  stream.lendOnPipe((dest, end) => {
    if (!(dest instanceof ServerResponse)) return false;
    writeLent(stream, dest, end);
    return true;
  });
  return stream;
}

function writeLent(source: Readable & Lending, res: ServerResponse, end: boolean): void {
  let ended = false;
  // A response that goes away mid-stream leaves the source no other reader, and pipe() never
  // destroys its source: destroyed here, so its descriptor is closed now, not by the GC.
  const gone = () => {
    if (!ended) source.destroy();
  };
  if (res.destroyed) queueMicrotask(gone);
  else res.once('close', gone);
  // The pump's first lend() (synchronous) stops the source's own reads before resume() asks for any.
  const pumping = pump(source, res, end, () => (ended = true));
  // Flowing with nothing pushed: 'end' (and then 'close') fire once the pump pushes null,
  // which is what fastify and `finished()` watch for.
  source.resume();
  pumping.catch((e: unknown) => source.destroy(e as Error));
}

/**
 * One read ahead: the next chunk is read while the current one is being written, so the
 * file's latency and the socket's overlap (two buffers per response at most).
 */
async function pump(source: Readable & Lending, res: ServerResponse, end: boolean, ending: () => void): Promise<void> {
  let ahead: ReturnType<Lending['lend']> | undefined = source.lend();
  try {
    for (;;) {
      const chunk = await ahead!;
      ahead = undefined;
      if (source.destroyed || res.destroyed || !chunk) {
        chunk?.giveBack();
        if (!chunk && !source.destroyed) {
          // The end: the source closes itself (autoDestroy).
          ending();
          source.push(null);
          if (end) res.end();
        }
        return;
      }
      ahead = source.lend();
      // A failed write never hands the buffer back to the pool: the GC takes it. (A write to a
      // socket that is already destroyed may never call back: stopLending() settles it.)
      if (!res.write(chunk.bytes, (err) => chunk.giveBack(!err))) await drained(res);
    }
  } finally {
    source.stopLending();
    // Stopped early: the read ahead's buffer goes back to the pool, its failure is moot.
    ahead?.then((c) => c?.giveBack(), () => undefined);
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
