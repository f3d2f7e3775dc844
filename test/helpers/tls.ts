/**
 * TLS for tests: certificate authorities and server certificates made with openssl, and a TLS
 * front (an https listener on 127.0.0.1 that relays the decrypted bytes to a plain-http server),
 * so that any test server can be reached over https with a certificate from a chosen CA.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCA {
  name: string;
  certFile: string;
  keyFile: string;
  pem: string;
}

export async function makeCA(dir: string, name: string): Promise<TestCA> {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.crt`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', certFile,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { timeout: 30_000 });
  return { name, certFile, keyFile, pem: await readFile(certFile, 'utf8') };
}

/** A server certificate from `ca` for 127.0.0.1 and localhost. */
export async function issueCert(ca: TestCA, dir: string, name: string): Promise<{ cert: string; key: string }> {
  const keyFile = path.join(dir, `${name}.key`);
  const csrFile = path.join(dir, `${name}.csr`);
  const certFile = path.join(dir, `${name}.crt`);
  const extFile = path.join(dir, `${name}.ext`);
  await writeFile(extFile, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', csrFile], { timeout: 30_000 });
  await run('openssl', ['x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-days', '2', '-extfile', extFile, '-out', certFile], { timeout: 30_000 });
  return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
}

export interface TlsFront {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** https://127.0.0.1:<port> in front of the plain-http server at `target`. */
export async function startTlsFront(target: string, cert: { cert: string; key: string }): Promise<TlsFront> {
  const t = new URL(target);
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ cert: cert.cert, key: cert.key }, (client) => {
    const upstream = net.connect(Number(t.port), t.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.pipe(upstream).pipe(client);
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
  });
  // A client that refuses the certificate ends the handshake; nothing to do.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
