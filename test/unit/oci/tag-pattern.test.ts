import { describe, expect, it } from 'vitest';
import { checkTagPattern, selectTags } from '../../../src/oci/tag-pattern.js';

const TAGS = ['latest', '1.25.9', '1.26.0', '1.27', '1.27.1', '1.27.2', '1.27.2-alpine', 'v1.28.0', '2.0.0', 'mainline', '1.27.3-rc.1'];

describe('tag selection', () => {
  it('matches globs, newest version first', () => {
    expect(selectTags(TAGS, ['1.27.*'])).toEqual(['1.27.3-rc.1', '1.27.2', '1.27.2-alpine', '1.27.1']);
    expect(selectTags(TAGS, ['*-alpine', 'main*'])).toEqual(['1.27.2-alpine', 'mainline']);
  });

  it('matches semver ranges, leaving out prereleases and tags that are not versions', () => {
    expect(selectTags(TAGS, ['>=1.26 <2'])).toEqual(['v1.28.0', '1.27.2', '1.27.1', '1.27', '1.26.0']);
    expect(selectTags(TAGS, ['^1.27.1'])).toEqual(['v1.28.0', '1.27.2', '1.27.1']);
    expect(selectTags(TAGS, ['~1.26'])).toEqual(['1.26.0']);
  });

  it('caps at the newest N, and takes every tag without patterns', () => {
    expect(selectTags(TAGS, ['>=1.26 <2'], 2)).toEqual(['v1.28.0', '1.27.2']);
    expect(selectTags(TAGS, undefined)).toHaveLength(TAGS.length);
    expect(selectTags(TAGS, undefined, 1)).toEqual(['2.0.0']);
    expect(selectTags([], ['*'])).toEqual([]);
  });

  it('refuses a broken range with one line', () => {
    expect(() => checkTagPattern('>=banana')).toThrow(/not a valid semver range/);
    expect(() => checkTagPattern('1.27.*')).not.toThrow();
  });
});
