/** The upstreams' allow and deny lists, applied to the names a bundle or archive would make local. */
import type { Denial, PolicyMode } from '../mirror/policy.js';
import { BundleError } from './bundle-error.js';

export interface ImportPolicy {
  /** A stored name's (and tag's) denial (policy.ts storedNameJudge). */
  judge(storeName: string, tag?: string): Denial | undefined;
  mode: PolicyMode;
  /** Import denied images anyway (airlock import --force). */
  force?: boolean;
}

/**
 * The policy's denials of these images, one line per repository denied by name or per tag;
 * throws when they refuse the import.
 */
export function judgeImport(policy: ImportPolicy | undefined, file: string, images: Iterable<{ name: string; tag?: string }>, job: 'import' | 'load' = 'import'): string[] {
  if (!policy) return [];
  const tags = new Map<string, Set<string>>();
  for (const i of images) {
    const s = tags.get(i.name) ?? new Set<string>();
    if (i.tag !== undefined) s.add(i.tag);
    tags.set(i.name, s);
  }
  const denials: string[] = [];
  for (const [name, set] of tags) {
    const whole = policy.judge(name);
    if (whole) {
      denials.push(`${name}: ${whole.message}`);
      continue;
    }
    for (const tag of set) {
      const d = policy.judge(name, tag);
      if (d) denials.push(`${name}:${tag}: ${d.message}`);
    }
  }
  if (denials.length > 0 && policy.mode === 'enforce' && !policy.force) {
    const shown = denials.slice(0, 5).join('; ') + (denials.length > 5 ? `; and ${denials.length - 5} more` : '');
    const refusal = job === 'import' ? 'so nothing was imported' : 'so nothing was loaded';
    const force = job === 'import' ? 'airlock import --force imports it anyway' : 'airlock load --force loads them anyway';
    throw new BundleError(`${file} carries images the upstreams' allow and deny lists deny, ${refusal}: ${shown} (${force})`);
  }
  return denials;
}

