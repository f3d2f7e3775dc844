import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * The kernel hands out ports from ip_local_port_range to every outgoing connection, so a port
 * taken from that range (listen(0)) and given to another program can be taken by a client
 * socket before the program binds it. Ports for other programs are chosen below that range, at
 * random (so concurrent test workers rarely pick the same one), checked free, and never handed
 * out twice by one process.
 */
function ephemeralStart(): number {
  try {
    const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && lo > 12_000) return lo;
  } catch { /* not Linux */ }
  return 32_768;
}

const LOW = 10_000;
const HIGH = ephemeralStart() - 1;
const given = new Set<number>();

function tryBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port that was free on 127.0.0.1 a moment ago (for programs that need one on the command line). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (given.has(port)) continue;
    if (await tryBind(port)) {
      given.add(port);
      return port;
    }
  }
  throw new Error('no free port found below the ephemeral range');
}
