/**
 * The Authenticator against a real token endpoint (node:http on 127.0.0.1): Docker Hub's token
 * answer shapes, and a refused realm that is neither asked nor remembered.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamBadResponseError } from '../../../src/oci/errors.js';
import { Agent } from '../../../src/runtime/undici.js';
import { Authenticator } from '../../../src/upstream/token-auth.js';

let server: http.Server;
let realm = '';
const seen: Array<{ url: string; authorization?: string }> = [];

beforeAll(async () => {
  // Answers like Docker Hub's auth service can: the token in access_token only, no expires_in.
  server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `t${seen.length}` }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const creds = { username: 'u', password: 'p' };

describe('Authenticator', () => {
  it('takes access_token, assumes the default lifetime when expires_in is missing, and asks once per scope', async () => {
    const agent = new Agent();
    const auth = new Authenticator(agent, creds, 5000, { name: 'up', url: new URL('http://127.0.0.1:5000'), tokenHosts: [] });
    seen.length = 0;
    const header = await auth.answerChallenge(`Bearer realm="${realm}",service="svc"`, 'repository:library/a:pull');
    expect(header).toBe('Bearer t1');
    expect(seen[0]!.url).toBe('/token?service=svc&scope=repository%3Alibrary%2Fa%3Apull');
    expect(seen[0]!.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    expect(await auth.authorizationFor('repository:library/a:pull')).toBe('Bearer t1');
    // A new scope: the remembered realm is asked before the first request.
    expect(await auth.authorizationFor('repository:library/b:pull')).toBe('Bearer t2');
    expect(seen).toHaveLength(2);
    await agent.close();
  });

  it('refuses a realm on another host with the credentials, and does not remember it', async () => {
    const agent = new Agent();
    const auth = new Authenticator(agent, creds, 5000, { name: 'up', url: new URL('http://localhost:5000'), tokenHosts: [] });
    seen.length = 0;
    await expect(auth.answerChallenge(`Bearer realm="${realm}"`, 'repository:a:pull')).rejects.toBeInstanceOf(UpstreamBadResponseError);
    expect(await auth.authorizationFor('repository:b:pull')).toBeUndefined();
    expect(seen).toEqual([]);
    // Listed in tokenHosts, the same realm is asked.
    const listed = new Authenticator(agent, creds, 5000, { name: 'up', url: new URL('http://localhost:5000'), tokenHosts: ['127.0.0.1'] });
    expect(await listed.answerChallenge(`Bearer realm="${realm}"`, 'repository:a:pull')).toBe('Bearer t1');
    await agent.close();
  });
});
