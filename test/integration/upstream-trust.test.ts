/**
 * What airlock trusts from an upstream (issue 17, item 2), with real parts: Distribution with
 * token auth behind the counting proxy, a CDN on another origin, an attacker's token realm and
 * an "internal" service on 127.0.0.2, TLS fronts with certificates from test CAs, skopeo as the
 * client. Each test sets up what an upstream, a CDN or a redirect could do to airlock and checks
 * what the other parties received.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { spawnServe, waitHealthy } from '../helpers/cli.js';
import { startAttackerRealm, startInternalService, type RecordingServer } from '../helpers/hostile.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { pullToLayout } from '../helpers/skopeo.js';
import { issueCert, makeCA, startTlsFront, type TestCA, type TlsFront } from '../helpers/tls.js';
import { READER, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

let work: string;
let up: TestUpstream;
let img: GeneratedImage;
let other: GeneratedImage;
let n = 0;
const running: Array<{ stop(): Promise<void> }> = [];

async function airlockFor(url: string, upstreamExtra: string[] = []): Promise<RunningAirlock> {
  const a = await startAirlock(
    [
      `storage:\n  root: ${path.join(work, `store-${n++}`)}`,
      'log:\n  level: warn',
      'upstreams:',
      '  docker.io:',
      `    url: ${url}`,
      `    username: ${READER.user}`,
      `    password: ${READER.password}`,
      '    timeouts:\n      read: 5s\n      connect: 2s',
      '    retries: 1',
      ...upstreamExtra.map((l) => `    ${l}`),
      'defaultUpstream: docker.io',
    ].join('\n'),
  );
  running.push(a);
  return a;
}

function pull(a: { host: string }, ref: string): Promise<{ manifestDigest: string; blobs: string[] }> {
  return pullToLayout(`docker://${a.host}/${ref}`, path.join(work, `pull-${n++}`), { all: true, timeoutMs: 60_000 });
}

/** Every log line as text: what an operator greps. */
function logText(a: RunningAirlock): string {
  return a.logs.map((l) => JSON.stringify(l)).join('\n');
}

/** The token server's requests that carried the upstream's login. */
function tokenRequestsWithLogin(): number {
  return up.tokens.requests.filter((r) => r.user === READER.user).length;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-trust-'));
  up = await startTestUpstream();
  img = await generateImage(path.join(work, 'g-img'), { layers: 2, layerSize: 200_000, format: 'oci' });
  other = await generateImage(path.join(work, 'g-other'), { layers: 1, layerSize: 100_000, format: 'docker' });
  await up.push(img, 'library/app', '1');
  await up.push(other, 'team/other', '1');
}, 300_000);

afterAll(async () => {
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
  up.proxy.reset();
  up.tokens.requests.length = 0;
});

describe('challenges are answered only from the upstream\'s own origin', () => {
  it('a 401 met on a redirected hop (a CDN) gets no credentials and never replaces the upstream\'s remembered realm', async () => {
    const attacker = await startAttackerRealm();
    running.push(attacker);
    const a = await airlockFor(up.proxy.url);
    // airlock holds a token for the repository (the client got the manifest first), so its
    // blob GET goes out authorized and is redirected to the CDN.
    const m = await request(`${a.url}/v2/library/app/manifests/1`);
    await m.body.dump();
    expect(m.statusCode).toBe(200);
    up.proxy.faults.redirectBlobs = 'cdn';
    up.proxy.faults.cdnChallenge = `Bearer realm="${attacker.url}/steal",service="cdn"`;
    const layer = img.blobs.find((b) => b.mediaType.includes('layer'))!;
    const r = await request(`${a.url}/v2/library/app/blobs/${layer.digest}`);
    const body = await r.body.text();
    // The attacker's realm was never asked, with or without the password.
    expect(attacker.requests).toEqual([]);
    expect(r.statusCode).toBe(502);
    expect(body).not.toContain('attacker');
    expect(logText(a)).toContain('answered 401');
    // A repository airlock never asked for before: its token comes from the upstream's realm.
    up.proxy.reset();
    const p = await pull(a, 'team/other:1');
    expect(p.manifestDigest).toBe(other.manifestDigest);
    expect(attacker.requests).toEqual([]);
    expect(up.tokens.requests.some((t) => t.user === READER.user && t.scopes.includes('repository:team/other:pull'))).toBe(true);
  });
});

describe('token realms', () => {
  it('the upstream\'s credentials go to a realm on another host only when upstreams.<host>.tokenHosts lists it', async () => {
    // The upstream names its token server by another host name (localhost, not 127.0.0.1).
    const tokenPort = new URL(up.tokens.realm).port;
    up.proxy.faults.realm = `http://localhost:${tokenPort}/token`;
    const a = await airlockFor(up.proxy.url);
    const r = await request(`${a.url}/v2/library/app/manifests/1`);
    await r.body.dump();
    expect(tokenRequestsWithLogin()).toBe(0);
    expect(up.tokens.requests).toEqual([]);
    expect(r.statusCode).toBe(502);
    expect(logText(a)).toContain('tokenHosts');

    const b = await airlockFor(up.proxy.url, ['tokenHosts: [localhost]']);
    const p = await pull(b, 'library/app:1');
    expect(p.manifestDigest).toBe(img.manifestDigest);
    expect(tokenRequestsWithLogin()).toBeGreaterThan(0);
  });
});

describe('redirects are followed for blobs only', () => {
  let internal: RecordingServer;
  beforeAll(async () => {
    internal = await startInternalService('127.0.0.2');
  });
  afterAll(() => internal?.stop());

  it('a tags/list or manifest answered with a 307 to an internal service is refused; that service is never asked and its answer never reaches the client', async () => {
    const a = await airlockFor(up.proxy.url);
    up.proxy.faults.redirectOthers = internal.url;
    const tags = await request(`${a.url}/v2/library/app/tags/list`);
    const tagsBody = await tags.body.text();
    expect(tagsBody).not.toContain('internal-secret');
    expect(tags.statusCode).toBe(502);
    const manifest = await request(`${a.url}/v2/library/app/manifests/1`);
    const manifestBody = await manifest.body.text();
    expect(manifestBody).not.toContain('internal-secret');
    expect(manifest.statusCode).toBe(502);
    expect(internal.requests).toEqual([]);
    expect(logText(a)).toContain('only for blobs');
    // Refusals are that request's failure, not the upstream's: it is still in use.
    up.proxy.faults.redirectOthers = undefined;
    const p = await pull(a, 'library/app:1');
    expect(p.manifestDigest).toBe(img.manifestDigest);
  });
});

describe('an https upstream', () => {
  let upstreamCA: TestCA;
  let operatorCA: TestCA;
  let front: TlsFront;
  /** The token server over https, with a certificate from the upstream's CA, and from the operator's. */
  let realmB: TlsFront;
  let realmA: TlsFront;

  beforeAll(async () => {
    upstreamCA = await makeCA(work, 'upstream-ca');
    operatorCA = await makeCA(work, 'operator-ca');
    const tokenServer = new URL(up.tokens.realm).origin;
    front = await startTlsFront(up.proxy.url, await issueCert(upstreamCA, work, 'registry'));
    realmB = await startTlsFront(tokenServer, await issueCert(upstreamCA, work, 'realm-b'));
    realmA = await startTlsFront(tokenServer, await issueCert(operatorCA, work, 'realm-a'));
  }, 120_000);
  afterAll(async () => {
    await front?.stop();
    await realmB?.stop();
    await realmA?.stop();
  });

  it('never follows a blob redirect from https to http', async () => {
    up.proxy.faults.realm = `${realmB.url}/token`;
    const a = await airlockFor(front.url, [`ca: ${upstreamCA.certFile}`]);
    // The CDN the upstream redirects blobs to is plain http.
    up.proxy.faults.redirectBlobs = 'cdn';
    await expect(pull(a, 'library/app:1')).rejects.toThrow();
    expect(up.proxy.cdn.requests).toBe(0);
    expect(logText(a)).toContain('https to http');
    up.proxy.faults.redirectBlobs = undefined;
    const p = await pull(a, 'library/app:1');
    expect(p.manifestDigest).toBe(img.manifestDigest);
  });

  it('asks its token realm only over https', async () => {
    up.proxy.faults.realm = up.tokens.realm;
    expect(up.tokens.realm.startsWith('http://')).toBe(true);
    const a = await airlockFor(front.url, [`ca: ${upstreamCA.certFile}`]);
    const r = await request(`${a.url}/v2/library/app/manifests/1`);
    await r.body.dump();
    expect(up.tokens.requests).toEqual([]);
    expect(r.statusCode).toBe(502);
  });

  it('upstreams.<host>.ca adds to the trusted roots instead of replacing them', async () => {
    // The token realm's certificate comes from a CA the process trusts by default (the
    // operator's, added with NODE_EXTRA_CA_CERTS); the upstream's from the CA in `ca`.
    up.proxy.faults.realm = `${realmA.url}/token`;
    const port = await freePort();
    const cfg = path.join(work, 'ca.yml');
    await writeFile(cfg, [
      `listen: "127.0.0.1:${port}"`,
      `storage:\n  root: ${path.join(work, 'store-ca')}`,
      'log:\n  level: warn',
      'upstreams:',
      '  docker.io:',
      `    url: ${front.url}`,
      `    username: ${READER.user}`,
      `    password: ${READER.password}`,
      `    ca: ${upstreamCA.certFile}`,
      '    retries: 0',
    ].join('\n'));
    const serve = spawnServe(cfg, { NODE_EXTRA_CA_CERTS: operatorCA.certFile });
    try {
      await waitHealthy(`http://127.0.0.1:${port}`, { out: serve.out });
      const p = await pull({ host: `127.0.0.1:${port}` }, 'library/app:1').catch((e: unknown) => {
        throw new Error(`${(e as Error).message}\nairlock: ${serve.out()}`);
      });
      expect(p.manifestDigest).toBe(img.manifestDigest);
      expect(tokenRequestsWithLogin()).toBeGreaterThan(0);
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exit;
    }
  });
});
