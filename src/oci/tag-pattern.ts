/**
 * Tag selection for prefetch entries: glob patterns (`1.27.*`) and semver ranges
 * (`>=1.26 <2`) over an upstream's tag list, newest first.
 */
import picomatch from 'picomatch';
import semver from 'semver';

/** A pattern with a comparison operator, `^`, `~`, `||` or a space is a semver range; anything else a glob. */
function isRange(pattern: string): boolean {
  return /[<>=^~|\s]/.test(pattern.trim());
}

/** Throws a one-line message for a pattern that is neither a valid range nor a valid glob. */
export function checkTagPattern(pattern: string): void {
  if (isRange(pattern)) {
    if (semver.validRange(pattern, { loose: true }) === null) throw new TypeError(`"${pattern}" is not a valid semver range`);
    return;
  }
  if (pattern.length === 0 || pattern.length > 128) throw new TypeError(`"${pattern}" is not a valid tag pattern`);
}

/** A tag's version when it reads as one (`1.27.3`, `v1.2`, `1.27`); undefined otherwise. */
export function tagVersion(tag: string): semver.SemVer | undefined {
  const v = semver.parse(tag, { loose: true });
  if (v) return v;
  if (/^v?\d+(\.\d+){0,2}$/.test(tag)) return semver.coerce(tag) ?? undefined;
  return undefined;
}

/** Newest first: versions by precedence, then tags that are not versions, lexically descending. */
export function compareNewestFirst(a: string, b: string): number {
  const va = tagVersion(a);
  const vb = tagVersion(b);
  if (va && vb) return semver.rcompare(va, vb) || (a < b ? 1 : a > b ? -1 : 0);
  if (va) return -1;
  if (vb) return 1;
  return a < b ? 1 : a > b ? -1 : 0;
}

/** The tags matching any pattern (all tags when none are given), newest first, at most `newest`. */
export function selectTags(tags: readonly string[], patterns: readonly string[] | undefined, newest?: number): string[] {
  const tests = (patterns ?? []).map((p) => {
    if (isRange(p)) {
      return (t: string) => {
        const v = tagVersion(t);
        return v !== undefined && semver.satisfies(v, p, { loose: true });
      };
    }
    return picomatch(p, { dot: true });
  });
  const matched = tests.length ? tags.filter((t) => tests.some((f) => f(t))) : [...tags];
  matched.sort(compareNewestFirst);
  return newest !== undefined ? matched.slice(0, newest) : matched;
}
