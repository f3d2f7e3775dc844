/**
 * A small Docker token server (the "Token Authentication Specification" Distribution implements),
 * so the test upstream behaves like Docker Hub or ghcr.io: 401 with a Bearer challenge, a token
 * from this realm, scoped per repository. Tokens are RS256 JWTs carrying the signing certificate
 * in `x5c`; Distribution trusts them through `auth.token.rootcertbundle`.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, createSign, randomBytes, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TokenServerOptions {
  /** Directory for the key and certificate. */
  dir: string;
  service?: string;
  issuer?: string;
  /** user → password. Anonymous requests get pull on public repositories only. */
  users?: Record<string, string>;
  /** Repository names (or prefixes ending in '/') that need a login to pull. */
  privateRepositories?: string[];
  /** Which field carries the token: Docker Hub sends both. */
  field?: 'token' | 'access_token' | 'both';
  /** Seconds a token lives; omitted from the answer when undefined (clients assume 60). */
  expiresIn?: number;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Requests seen, with the scopes asked and who asked. */
  requests: Array<{ scopes: string[]; user?: string; status: number }>;
  /** Make the next requests fail with this status (undefined: behave). */
  failWith?: number;
  /** Issue tokens that have already expired. */
  issueExpired: boolean;
  stop(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const keyFile = path.join(opts.dir, 'token.key');
  const certFile = path.join(opts.dir, 'token.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=airlock-test-token'], { timeout: 30_000 });
  const key = createPrivateKey(await readFile(keyFile));
  const certDer = new X509Certificate(await readFile(certFile)).raw;
  const service = opts.service ?? 'airlock-test-registry';
  const issuer = opts.issuer ?? 'airlock-test-issuer';
  const users = opts.users ?? {};
  const isPrivate = (name: string) => (opts.privateRepositories ?? []).some((p) => (p.endsWith('/') ? name.startsWith(p) : name === p));

  const sign = (sub: string, access: Array<{ type: string; name: string; actions: string[] }>, expiresIn: number): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] };
    const exp = state.issueExpired ? now - 120 : now + expiresIn;
    const claims = { iss: issuer, sub, aud: service, exp, nbf: now - 300, iat: now - 300, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(key);
    return `${input}.${b64url(sig)}`;
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    let user: string | undefined;
    const auth = req.headers.authorization;
    const answer = (status: number, body: unknown) => {
      state.requests.push({ scopes, user, status });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (state.failWith) return answer(state.failWith, { error: 'injected failure' });
    if (auth?.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      if (!u || users[u] === undefined || users[u] !== rest.join(':')) return answer(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] });
      user = u;
    }
    const access: Array<{ type: string; name: string; actions: string[] }> = [];
    for (const s of scopes) {
      const [type, ...mid] = s.split(':');
      const actions = (mid.pop() ?? '').split(',').filter(Boolean);
      const name = mid.join(':');
      if (type !== 'repository' || !name) continue;
      // Anonymous users get pull on public repositories; a login gets everything it asked for.
      const granted = user ? actions : isPrivate(name) ? [] : actions.filter((a) => a === 'pull');
      access.push({ type, name, actions: granted });
    }
    const expiresIn = opts.expiresIn ?? 300;
    const token = sign(user ?? '', access, expiresIn);
    const body: Record<string, unknown> = { issued_at: new Date().toISOString() };
    if (opts.expiresIn !== undefined) body.expires_in = opts.expiresIn;
    const field = opts.field ?? 'both';
    if (field !== 'access_token') body.token = token;
    if (field !== 'token') body.access_token = token;
    answer(200, body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  const state: TokenServer = {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests: [],
    failWith: undefined,
    issueExpired: false,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
  return state;
}
