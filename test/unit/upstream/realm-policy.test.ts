import { describe, expect, it } from 'vitest';
import { realmRefusal } from '../../../src/upstream/realm-policy.js';

const u = (s: string) => new URL(s);
const creds = { tokenHosts: [] as string[], credentials: true };

describe('realmRefusal', () => {
  it('allows a realm on the upstream\'s own host name, on any port', () => {
    expect(realmRefusal(u('https://ghcr.io/token'), u('https://ghcr.io'), creds)).toBeUndefined();
    expect(realmRefusal(u('http://127.0.0.1:5001/token'), u('http://127.0.0.1:5000'), creds)).toBeUndefined();
  });

  it('refuses plain http when the upstream is https; allows it when the upstream is http', () => {
    expect(realmRefusal(u('http://ghcr.io/token'), u('https://ghcr.io'), creds)).toMatch(/plain http/);
    expect(realmRefusal(u('http://ghcr.io/token'), u('https://ghcr.io'), { tokenHosts: [], credentials: false })).toMatch(/plain http/);
    expect(realmRefusal(u('https://reg.lab/token'), u('http://reg.lab'), creds)).toBeUndefined();
  });

  it('refuses other schemes and realms with credentials in the URL', () => {
    expect(realmRefusal(u('file:///etc/passwd'), u('http://reg.lab'), creds)).toMatch(/not http/);
    expect(realmRefusal(u('https://user:pw@reg.lab/token'), u('https://reg.lab'), creds)).toMatch(/credentials/);
  });

  it('sends credentials to another host only when tokenHosts lists it (host: any port; host:port: that port)', () => {
    expect(realmRefusal(u('https://auth.example/token'), u('https://registry.example'), creds)).toMatch(/tokenHosts/);
    expect(realmRefusal(u('https://auth.example/token'), u('https://registry.example'), { tokenHosts: ['auth.example'], credentials: true })).toBeUndefined();
    expect(realmRefusal(u('https://AUTH.example:8443/token'), u('https://registry.example'), { tokenHosts: ['auth.example'], credentials: true })).toBeUndefined();
    expect(realmRefusal(u('https://auth.example:8443/token'), u('https://registry.example'), { tokenHosts: ['auth.example:443'], credentials: true })).toMatch(/tokenHosts/);
    expect(realmRefusal(u('https://auth.example/token'), u('https://registry.example'), { tokenHosts: ['auth.example:443'], credentials: true })).toBeUndefined();
    expect(realmRefusal(u('https://auth.example.attacker/token'), u('https://registry.example'), { tokenHosts: ['auth.example'], credentials: true })).toMatch(/tokenHosts/);
  });

  it('knows Docker Hub\'s auth host', () => {
    expect(realmRefusal(u('https://auth.docker.io/token'), u('https://registry-1.docker.io'), creds)).toBeUndefined();
    expect(realmRefusal(u('https://auth.docker.io/token'), u('https://ghcr.io'), creds)).toMatch(/tokenHosts/);
  });

  it('without credentials, any https realm may be asked (anonymously)', () => {
    expect(realmRefusal(u('https://auth.example/token'), u('https://registry.example'), { tokenHosts: [], credentials: false })).toBeUndefined();
  });
});
