import { describe, expect, it } from 'vitest';
import { kitArch, parseReleaseKitName, RELEASE_KIT_PATTERN, releaseKitDir, releaseKitName } from '../../../src/runtime/release-kit.js';

describe('release kit names', () => {
  it('spells architectures as OCI platforms do, and names the kit and its folder from version and architecture', () => {
    expect(kitArch('x64')).toBe('amd64');
    expect(kitArch('arm64')).toBe('arm64');
    expect(kitArch('ppc64')).toBe('ppc64le');
    expect(releaseKitName('0.1.0', 'amd64')).toBe('airlock-0.1.0-linux-amd64.tar.gz');
    expect(releaseKitDir('1.2.3-rc.1', 'arm64')).toBe('airlock-1.2.3-rc.1-linux-arm64');
    expect(releaseKitName('0.1.0')).toBe(`airlock-0.1.0-linux-${kitArch(process.arch)}.tar.gz`);
  });

  it('reads version and architecture back from a name or a path, and nothing from other names', () => {
    expect(parseReleaseKitName('/media/usb/airlock-1.2.3-rc.1-linux-arm64.tar.gz')).toEqual({ version: '1.2.3-rc.1', arch: 'arm64' });
    expect(parseReleaseKitName(releaseKitName('0.1.0', 'amd64'))).toEqual({ version: '0.1.0', arch: 'amd64' });
    for (const other of ['airlock-0.1.0-linux-amd64.tar', 'airlock-0.1.0-darwin-arm64.tar.gz', 'airlock-latest-linux-amd64.tar.gz', 'site.tar', 'airlock-0.1.0-linux-amd64.tar.gz.partial']) {
      expect(parseReleaseKitName(other), other).toBeUndefined();
      expect(RELEASE_KIT_PATTERN.test(other), other).toBe(false);
    }
  });
});
