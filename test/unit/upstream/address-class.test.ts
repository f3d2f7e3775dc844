import { describe, expect, it } from 'vitest';
import { addressClass, isPrivateAddress } from '../../../src/upstream/address-class.js';

describe('addressClass', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.0.0.2', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['[::ffff:7f00:1]', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%lo', 'link-local'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd00::1', 'private'],
    ['::ffff:a00:1', 'private'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'reserved'],
    ['172.32.0.1', 'public'],
    ['8.8.8.8', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['::ffff:8.8.8.8', 'public'],
  ])('%s is %s', (address, cls) => {
    expect(addressClass(address)).toBe(cls);
    expect(isPrivateAddress(address)).toBe(cls !== 'public');
  });

  it('is undefined for a host name', () => {
    expect(addressClass('localhost')).toBeUndefined();
    expect(isPrivateAddress('registry.example')).toBe(false);
  });

  it('sees the address a URL parser makes of odd IPv4 spellings', () => {
    for (const host of ['0x7f.1', '2130706433', '127.1', '0177.0.0.1']) expect(addressClass(new URL(`http://${host}/`).hostname)).toBe('loopback');
  });
});
