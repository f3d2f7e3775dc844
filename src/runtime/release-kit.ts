/**
 * The release kit's name: `npm run release` (scripts/release.sh) writes
 * `airlock-<version>-linux-<arch>.tar.gz`, holding one folder of the same name without `.tar.gz`
 * (its own Node, dist/, production node_modules, install.sh). `airlock freeze --with-airlock`
 * finds the kit by this name; release.sh takes the name from here too, so the two cannot drift.
 */

/** Node's process.arch as OCI platforms spell it (linux/amd64), the names operators see in mirror.yml. */
const OCI_ARCH: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/** Where `npm run release` writes the kit without --out, relative to the repository. */
export const RELEASE_DIR = 'release';

/** A kit file name: version (semver, maybe with -pre or +build) and architecture. */
export const RELEASE_KIT_PATTERN = /^airlock-(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)-linux-([a-z0-9]+)\.tar\.gz$/;

/** The kit's architecture name for a Node architecture (this process's by default). */
export function kitArch(nodeArch: string = process.arch): string {
  return OCI_ARCH[nodeArch] ?? nodeArch;
}

/** The folder inside the kit: `airlock-0.1.0-linux-amd64`. */
export function releaseKitDir(version: string, arch: string = kitArch()): string {
  return `airlock-${version}-linux-${arch}`;
}

/** The kit's file name: `airlock-0.1.0-linux-amd64.tar.gz`. */
export function releaseKitName(version: string, arch: string = kitArch()): string {
  return `${releaseKitDir(version, arch)}.tar.gz`;
}

/** Version and architecture from a kit's file name (a path's last component); undefined for any other name. */
export function parseReleaseKitName(name: string): { version: string; arch: string } | undefined {
  const m = RELEASE_KIT_PATTERN.exec(name.slice(name.lastIndexOf('/') + 1));
  return m ? { version: m[1]!, arch: m[2]! } : undefined;
}
