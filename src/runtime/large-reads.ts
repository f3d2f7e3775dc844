/**
 * An undici connector whose sockets read into large buffers of their own, for bulk bodies
 * (object-store reads). Node reads a socket 64 KiB at a time into a new buffer each; a relay
 * then spends most of its CPU on per-chunk work in streams and the HTTP parser, not on bytes.
 * See bench/PERFORMANCE.md#large-socket-reads.
 */
import type { Socket } from 'node:net';
import { buildConnector } from './undici.js';

type Connector = ReturnType<typeof buildConnector>;
type ConnectorOptions = NonNullable<Parameters<typeof buildConnector>[0]>;

/**
 * A connector like undici's own, but each plain-http socket reads up to `size` bytes at a time.
 * A read that fills at least half the buffer hands the buffer on and the socket takes a new one;
 * a smaller read is copied out, so an idle connection holds one buffer, not many.
 */
export function largeReadConnector(options: ConnectorOptions, size = 512 * 1024): Connector {
  // TLS hands its reader one record (16 KiB at most) at a time, so large buffers buy nothing there.
  const tlsConnect = buildConnector(options);
  return (opts, callback) => {
    if (opts.protocol === 'https:') return tlsConnect(opts, callback);
    let buffer = Buffer.allocUnsafeSlow(size);
    // One connector per socket: Node's onread callback is not told which socket read.
    const connect = buildConnector({
      ...options,
      onread: {
        buffer: () => buffer,
        callback: (n: number, buf: Uint8Array) => {
          let chunk: Buffer;
          if (n >= size / 2) {
            chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
            buffer = Buffer.allocUnsafeSlow(size);
          } else {
            chunk = Buffer.allocUnsafe(n);
            chunk.set(buf.subarray(0, n));
          }
          // false stops the socket's reads until its reader asks for more, as a normal socket's push does.
          return socket.push(chunk);
        },
      },
    } as ConnectorOptions);
    const socket = (connect as (o: typeof opts, cb: typeof callback) => unknown)(opts, callback) as Socket;
    return socket;
  };
}
