/**
 * A real upstream for pull-through tests: Distribution with token auth (token-server.ts), and a
 * counting, fault-injecting proxy in front of it that records what the upstream served. The proxy
 * can also send blob GETs to a "CDN" on another origin that, like S3 with a signed URL, refuses
 * any request carrying an Authorization header.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startDistribution, type Distribution } from './distribution.js';
import { skopeoCopy } from './skopeo.js';
import { startTokenServer, type TokenServer } from './token-server.js';
import type { GeneratedImage } from './images.js';

export interface ProxyRecord {
  method: string;
  path: string;
  status: number;
  bytes: number;
  authorization: boolean;
}

export interface Faults {
  /** Flip one byte of the body of blob GETs for this digest (or every blob with true). */
  corruptBlob?: string | true;
  /** Cut the connection after this many bytes of a blob GET body, for the next `times` GETs. */
  cutBlob?: { afterBytes: number; times: number; digest?: string };
  /** Ignore Range headers (answer 200 with the whole body). */
  ignoreRange?: boolean;
  /** Answer blob GETs with a redirect: to the CDN (another origin) or relative (same origin). */
  redirectBlobs?: 'cdn' | 'relative';
  /** Refuse connections outright (the upstream went away). */
  down?: boolean;
  /** Answer every request with this status. */
  status?: number;
  /** Delay before answering, in ms. */
  delayMs?: number;
  /** Pace blob bodies to about this many bytes per second. */
  slowBlobs?: number;
  /**
   * A link of this many bytes per second shared by every response through the proxy, like a
   * site's uplink: each chunk is delivered once its turn on the link has passed, so concurrent
   * bodies split the rate between them.
   */
  link?: number;
  /** Cut the connection after this many bytes of a manifest GET body, for the next `times` GETs. */
  cutManifest?: { afterBytes: number; times: number };
  /** Flip one byte of manifest GET bodies. */
  corruptManifest?: boolean;
  /** Send manifest GET bodies one byte every this many ms (each byte well inside a read timeout). */
  dripManifest?: number;
  /** Send blob bodies with extra bytes at the end (chunked, no Content-Length). */
  extendBlob?: boolean;
  /** Close the connection as soon as a request arrives, before any header. */
  closeBeforeHeaders?: boolean;
  /** With `status`: the Retry-After header to send. */
  retryAfter?: string;
  /** The CDN answers 401 with this WWW-Authenticate instead of serving (a hostile or broken CDN). */
  cdnChallenge?: string;
  /** Rewrite the realm of the upstream's Bearer challenges to this URL. */
  realm?: string;
  /** Answer GET and HEAD of manifests and tags/list with a 307 to this base URL + the path (a redirect to another service). */
  redirectOthers?: string;
  /**
   * Rate-limit headers added to every response the upstream sends through the proxy, as Docker
   * Hub sends them (`limit: '100;w=21600'`, `remaining: '76;w=21600'`); `reset` is ratelimit-reset.
   */
  rateLimit?: { limit?: string; remaining?: string; reset?: string };
}

export interface CountingProxy {
  url: string;
  host: string;
  records: ProxyRecord[];
  faults: Faults;
  /** Blob body bytes served (GET 200/206 on /blobs/). */
  blobBytes(): number;
  /** GETs of blob bodies, per digest. */
  blobGets(digest?: string): number;
  manifestRequests(method?: string): number;
  reset(): void;
  cdn: { url: string; requests: number; rejectedWithAuth: number };
  stop(): Promise<void>;
}

function isBlobPath(p: string): string | undefined {
  return /\/blobs\/(sha256:[0-9a-f]{64})/.exec(p)?.[1];
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const t = new URL(target);
  const records: ProxyRecord[] = [];
  const faults: Faults = {};
  const signed = new Map<string, { path: string; authorization?: string }>();
  const cdn = { url: '', requests: 0, rejectedWithAuth: 0 };
  const sockets = new Set<import('node:net').Socket>();
  /** When the shared link (faults.link) is free again, in performance.now() ms. */
  let linkFreeAt = 0;
  /** Reserves the link for `bytes`; how many ms until they have crossed it. */
  const reserveLink = (bytes: number, rate: number): number => {
    const now = performance.now();
    linkFreeAt = Math.max(now, linkFreeAt) + (bytes / rate) * 1000;
    return linkFreeAt - now;
  };

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, pathOverride?: string, authorization?: string) => {
    const p = pathOverride ?? req.url ?? '/';
    const digest = isBlobPath(p);
    const headers = { ...req.headers, host: t.host };
    if (authorization !== undefined) headers.authorization = authorization;
    if (faults.ignoreRange) delete headers.range;
    const record: ProxyRecord = { method: req.method ?? 'GET', path: p, status: 0, bytes: 0, authorization: !!req.headers.authorization };
    records.push(record);
    const up = http.request({ host: t.hostname, port: t.port, path: p, method: req.method, headers }, (ur) => {
      record.status = ur.statusCode ?? 0;
      const blobBody = digest && req.method === 'GET' && (ur.statusCode === 200 || ur.statusCode === 206);
      const corrupt = blobBody && (faults.corruptBlob === true || faults.corruptBlob === digest);
      const manifestBody = !digest && p.includes('/manifests/') && req.method === 'GET' && ur.statusCode === 200;
      const cut = blobBody && faults.cutBlob && faults.cutBlob.times > 0 && (!faults.cutBlob.digest || faults.cutBlob.digest === digest)
        ? faults.cutBlob
        : manifestBody && faults.cutManifest && faults.cutManifest.times > 0 ? faults.cutManifest : undefined;
      if (cut) cut.times--;
      const corruptM = manifestBody && faults.corruptManifest;
      const drip = manifestBody ? faults.dripManifest : undefined;
      const held: Buffer[] = [];
      const extend = blobBody && faults.extendBlob;
      const outHeaders = { ...ur.headers };
      if (extend) delete outHeaders['content-length'];
      const rl = faults.rateLimit;
      if (rl?.limit !== undefined) outHeaders['ratelimit-limit'] = rl.limit;
      if (rl?.remaining !== undefined) outHeaders['ratelimit-remaining'] = rl.remaining;
      if (rl?.reset !== undefined) outHeaders['ratelimit-reset'] = rl.reset;
      if (faults.realm && typeof outHeaders['www-authenticate'] === 'string') {
        outHeaders['www-authenticate'] = outHeaders['www-authenticate'].replace(/realm="[^"]*"/, `realm="${faults.realm}"`);
      }
      res.writeHead(ur.statusCode ?? 502, outHeaders);
      let sent = 0;
      let flipped = false;
      /** A chunk held back by the shaped link (faults.link), until it is written. */
      let delayed: Promise<void> | undefined;
      ur.on('data', (c: Buffer) => {
        if (drip) {
          held.push(c);
          return;
        }
        let chunk = c;
        if ((corrupt || corruptM) && !flipped) {
          chunk = Buffer.from(c);
          chunk[chunk.length >> 1] = chunk[chunk.length >> 1]! ^ 0xff;
          flipped = true;
        }
        if (cut && sent + chunk.length >= cut.afterBytes) {
          const part = chunk.subarray(0, Math.max(0, cut.afterBytes - sent));
          if (part.length) res.write(part);
          sent += part.length;
          record.bytes += part.length;
          ur.destroy();
          res.socket?.destroy();
          return;
        }
        sent += chunk.length;
        if (blobBody) record.bytes += chunk.length;
        if (faults.link) {
          const wait = reserveLink(chunk.length, faults.link);
          // A couple of ms ahead of the schedule is let through: timers are not finer than that.
          if (wait > 2) {
            ur.pause();
            // 'end' may come while this chunk waits (the body ended with it): it ends the
            // response only after the chunk is written.
            delayed = new Promise((resolve) => setTimeout(() => {
              res.write(chunk);
              delayed = undefined;
              ur.resume();
              resolve();
            }, wait));
            return;
          }
        }
        res.write(chunk);
        if (blobBody && faults.slowBlobs) {
          ur.pause();
          setTimeout(() => ur.resume(), (chunk.length / faults.slowBlobs) * 1000);
        }
      });
      ur.on('end', () => {
        if (drip) {
          const all = Buffer.concat(held);
          let i = 0;
          const t = setInterval(() => {
            if (i >= all.length || res.destroyed) {
              clearInterval(t);
              res.end();
              return;
            }
            res.write(all.subarray(i, ++i));
          }, drip);
          return;
        }
        const finish = () => (extend ? res.end(Buffer.from('extra bytes')) : res.end());
        if (delayed) void delayed.then(finish);
        else finish();
      });
      ur.on('error', () => res.socket?.destroy());
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  };

  const server = http.createServer((req, res) => {
    const go = () => {
      if (faults.down) {
        req.socket.destroy();
        return;
      }
      if (faults.closeBeforeHeaders) {
        records.push({ method: req.method ?? 'GET', path: req.url ?? '/', status: 0, bytes: 0, authorization: !!req.headers.authorization });
        req.socket.destroy();
        return;
      }
      if (faults.status) {
        records.push({ method: req.method ?? 'GET', path: req.url ?? '/', status: faults.status, bytes: 0, authorization: !!req.headers.authorization });
        res.writeHead(faults.status, { 'content-type': 'application/json', ...(faults.retryAfter ? { 'retry-after': faults.retryAfter } : {}) }).end('{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}');
        return;
      }
      const p = req.url ?? '/';
      if (faults.redirectOthers && (req.method === 'GET' || req.method === 'HEAD') && /\/(manifests\/[^/]+|tags\/list)(\?.*)?$/.test(p)) {
        records.push({ method: req.method, path: p, status: 307, bytes: 0, authorization: !!req.headers.authorization });
        res.writeHead(307, { location: `${faults.redirectOthers}${p}`, 'content-length': '0' }).end();
        return;
      }
      if (p.startsWith('/_cdn/')) {
        const s = signed.get(p.slice(6));
        if (!s) return void res.writeHead(404).end();
        return forward(req, res, s.path, s.authorization);
      }
      if (faults.redirectBlobs && req.method === 'GET' && isBlobPath(p) && req.headers.authorization) {
        const sig = randomBytes(12).toString('hex');
        signed.set(sig, { path: p, authorization: req.headers.authorization });
        records.push({ method: 'GET', path: p, status: 307, bytes: 0, authorization: true });
        const location = faults.redirectBlobs === 'cdn' ? `${cdn.url}/_cdn/${sig}?X-Amz-Signature=${sig}` : `/_cdn/${sig}`;
        res.writeHead(307, { location, 'content-length': '0' }).end();
        return;
      }
      forward(req, res);
    };
    if (faults.delayMs) setTimeout(go, faults.delayMs);
    else go();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;

  // The CDN: another origin; refuses Authorization like S3 refuses a second auth mechanism.
  const cdnServer = http.createServer((req, res) => {
    cdn.requests++;
    if (faults.cdnChallenge) {
      res.writeHead(401, { 'www-authenticate': faults.cdnChallenge, 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"cdn"}]}');
      return;
    }
    if (req.headers.authorization) {
      cdn.rejectedWithAuth++;
      res.writeHead(400, { 'content-type': 'application/xml' }).end('<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>');
      return;
    }
    const sig = /^\/_cdn\/([0-9a-f]+)/.exec(req.url ?? '')?.[1];
    const s = sig ? signed.get(sig) : undefined;
    if (!s) return void res.writeHead(403).end();
    forward(req, res, s.path, s.authorization);
  });
  await new Promise<void>((r) => cdnServer.listen(0, '127.0.0.1', r));
  cdn.url = `http://127.0.0.1:${(cdnServer.address() as { port: number }).port}`;

  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    records,
    faults,
    cdn,
    blobBytes: () => records.filter((r) => r.method === 'GET' && isBlobPath(r.path) && r.status < 300).reduce((s, r) => s + r.bytes, 0),
    blobGets: (digest) => records.filter((r) => r.method === 'GET' && r.status < 300 && (digest ? isBlobPath(r.path) === digest : isBlobPath(r.path))).length,
    /** Manifest requests the upstream answered (a 401 that only asks for a token is not one). */
    manifestRequests: (method) => records.filter((r) => r.path.includes('/manifests/') && r.status !== 401 && (!method || r.method === method)).length,
    reset: () => {
      records.length = 0;
      for (const k of Object.keys(faults)) delete (faults as Record<string, unknown>)[k];
      cdn.requests = 0;
      cdn.rejectedWithAuth = 0;
    },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => { cdnServer.closeAllConnections(); cdnServer.close(r); })]);
    },
  };
}

export interface TestUpstream {
  dist: Distribution;
  tokens: TokenServer;
  proxy: CountingProxy;
  /** Pushes an image into the upstream (through Distribution directly, with the pusher's login). */
  push(img: GeneratedImage, repo: string, tag: string): Promise<void>;
  stop(): Promise<void>;
  dir: string;
}

export const PUSHER = { user: 'pusher', password: 'push-secret' };
export const READER = { user: 'reader', password: 'read-secret' };

/** Distribution with token auth behind a counting proxy; `privateRepositories` need a login to pull. */
export async function startTestUpstream(opts: { privateRepositories?: string[]; field?: 'token' | 'access_token' | 'both'; expiresIn?: number } = {}): Promise<TestUpstream> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-upstream-'));
  await mkdir(path.join(dir, 'root'));
  const tokens = await startTokenServer({
    dir,
    users: { [PUSHER.user]: PUSHER.password, [READER.user]: READER.password },
    privateRepositories: opts.privateRepositories,
    field: opts.field,
    expiresIn: opts.expiresIn,
  });
  const dist = await startDistribution({
    root: path.join(dir, 'root'),
    auth: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certFile },
  });
  const proxy = await startCountingProxy(dist.url);
  return {
    dist,
    tokens,
    proxy,
    dir,
    push: async (img, repo, tag) => {
      await skopeoCopy(img.source, `docker://${dist.host}/${repo}:${tag}`, { all: true, destCreds: `${PUSHER.user}:${PUSHER.password}` });
    },
    stop: async () => {
      await proxy.stop();
      await dist.stop();
      await tokens.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The `upstreams:` block of a mirror.yml: docker.io (with the reader's login) and ghcr.io, both served by `up`. */
export function mirrorUpstreams(up: TestUpstream): string {
  return ['upstreams:', '  docker.io:', `    url: ${up.proxy.url}`, `    username: ${READER.user}`, `    password: ${READER.password}`, '  ghcr.io:', `    url: ${up.proxy.url}`].join('\n');
}
