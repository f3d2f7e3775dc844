import { spawn } from 'node:child_process';
import { stopChild } from './proc.js';

/**
 * A plain TCP relay in its own Node process: bytes in, bytes out, no HTTP. Put where a mirror
 * sits, it shows what one more process on the path costs by itself on this machine: the floor
 * under any mirror's cold pull, against the same direct pull. With `storeDir` it also does the
 * two things no mirror can skip: it hashes every byte that comes back from the upstream
 * (sha256) and writes it to a file (1 MiB writes behind, as airlock's fill does), still
 * without parsing HTTP.
 */
export function startRelay(target: string, storeDir?: string): Promise<RelayProcess> {
  const [host, port] = splitHost(target);
  const script = `
    const net = require('node:net');
    const { createHash } = require('node:crypto');
    const fs = require('node:fs/promises');
    const storeDir = ${JSON.stringify(storeDir ?? '')};
    let n = 0;
    const server = net.createServer((c) => {
      const u = net.connect(${port}, ${JSON.stringify(host)});
      c.pipe(u);
      c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
      if (!storeDir) { u.pipe(c); return; }
      const hash = createHash('sha256');
      const file = storeDir + '/' + n++;
      const opened = fs.open(file, 'w');
      let written = Promise.resolve();
      let batch = [];
      let batchBytes = 0;
      const flush = () => {
        const bufs = batch;
        batch = [];
        batchBytes = 0;
        written = written.then(async () => { await (await opened).writev(bufs); });
      };
      u.on('data', (b) => {
        hash.update(b);
        batch.push(b);
        batchBytes += b.length;
        if (batchBytes >= 1 << 20) flush();
        if (!c.write(b)) { u.pause(); c.once('drain', () => u.resume()); }
      });
      u.on('end', () => {
        flush();
        hash.digest();
        c.end();
        written.then(async () => { await (await opened).close(); await fs.rm(file); });
      });
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  return startListening(script, 'the relay');
}

/** A relay process: where it listens, its pid (for its CPU seconds), and how to stop it. */
export interface RelayProcess {
  host: string;
  pid: number | undefined;
  stop: () => Promise<void>;
}

/** `host:port` as its two parts. */
export function splitHost(hostPort: string): [string, number] {
  const colon = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, colon), Number(hostPort.slice(colon + 1))];
}

/**
 * Runs `script` in its own Node process, with `flags` for Node; the script prints the port it
 * listens on, on 127.0.0.1.
 */
export async function startListening(script: string, what: string, env: NodeJS.ProcessEnv = process.env, flags: string[] = []): Promise<RelayProcess> {
  const child = spawn(process.execPath, [...flags, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const listening = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
  });
  return { host: `127.0.0.1:${listening}`, pid: child.pid, stop: () => stopChild(child) };
}
