/**
 * What kind of network an IP address is on: the public internet, or a place a redirect from an
 * upstream must not send airlock to (loopback, link-local with its cloud metadata endpoints,
 * private and shared ranges). Ranges from the IANA special-purpose registries (RFC 6890 and
 * its updates). IPv4-mapped IPv6 addresses are classified as the IPv4 address they carry.
 */
import { BlockList, isIP } from 'node:net';

export type AddressClass = 'public' | 'unspecified' | 'loopback' | 'link-local' | 'private' | 'reserved';

const RANGES: Array<[AddressClass, string, number, 'ipv4' | 'ipv6']> = [
  ['unspecified', '0.0.0.0', 8, 'ipv4'],
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['link-local', '169.254.0.0', 16, 'ipv4'],
  ['private', '10.0.0.0', 8, 'ipv4'],
  ['private', '172.16.0.0', 12, 'ipv4'],
  ['private', '192.168.0.0', 16, 'ipv4'],
  // Shared address space (carrier-grade NAT, RFC 6598): not reachable from the internet either.
  ['private', '100.64.0.0', 10, 'ipv4'],
  ['reserved', '192.0.0.0', 24, 'ipv4'],
  ['reserved', '198.18.0.0', 15, 'ipv4'],
  ['reserved', '224.0.0.0', 4, 'ipv4'],
  ['reserved', '240.0.0.0', 4, 'ipv4'],
  ['unspecified', '::', 128, 'ipv6'],
  ['loopback', '::1', 128, 'ipv6'],
  ['link-local', 'fe80::', 10, 'ipv6'],
  // Unique local addresses, and the deprecated site-local ones.
  ['private', 'fc00::', 7, 'ipv6'],
  ['private', 'fec0::', 10, 'ipv6'],
  ['reserved', 'ff00::', 8, 'ipv6'],
];

const LISTS = new Map<AddressClass, BlockList>();
for (const [cls, net, prefix, family] of RANGES) {
  let list = LISTS.get(cls);
  if (!list) LISTS.set(cls, (list = new BlockList()));
  list.addSubnet(net, prefix, family);
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:127.0.0.1 or ::ffff:7f00:1). */
function mappedIPv4(address: string): string | undefined {
  const a = address.toLowerCase();
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted && isIP(dotted[1] as string) === 4) return dotted[1];
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a);
  if (!hex) return undefined;
  const hi = parseInt(hex[1] as string, 16);
  const lo = parseInt(hex[2] as string, 16);
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/** The class of an IP address (brackets allowed, as in a URL's host); undefined when it is not one. */
export function addressClass(address: string): AddressClass | undefined {
  let a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  // A zone index (fe80::1%eth0) names an interface, not another address.
  a = a.replace(/%.*$/, '');
  const family = isIP(a);
  if (family === 0) return undefined;
  if (family === 6) {
    const v4 = mappedIPv4(a);
    if (v4) return addressClass(v4);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [cls, list] of LISTS) if (list.check(a, type)) return cls;
  return 'public';
}

/** Loopback, link-local, private or otherwise not a public internet address. */
export function isPrivateAddress(address: string): boolean {
  const c = addressClass(address);
  return c !== undefined && c !== 'public';
}
