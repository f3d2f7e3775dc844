import { describe, expect, it } from 'vitest';
import { PaginationInvalidError } from '../../../src/oci/errors.js';
import { nextLink, paginate, parsePagination } from '../../../src/oci/pagination.js';
import { contentRange, parseRange } from '../../../src/oci/range.js';

describe('parseRange', () => {
  it('serves single ranges, clamped', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ kind: 'range', start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ kind: 'range', start: 90, end: 99 });
    expect(parseRange('bytes=90-1000', 100)).toEqual({ kind: 'range', start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ kind: 'range', start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ kind: 'range', start: 0, end: 99 });
    expect(contentRange(90, 99, 100)).toBe('bytes 90-99/100');
  });
  it('calls a range past the end unsatisfiable', () => {
    expect(parseRange('bytes=100-', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', 100)).toEqual({ kind: 'unsatisfiable' });
  });
  it('ignores what it does not serve (whole body, RFC 9110 §14.2)', () => {
    for (const h of [undefined, '', 'bytes=', 'bytes=-', 'bytes=5-2', 'items=0-1', 'bytes=0-1,5-6', 'bytes=a-b', 'bytes=+1-2', 'bytes= 1-2', 'bytes=1 -2',
      `bytes=${'9'.repeat(30)}-`, `bytes=0-${'9'.repeat(30)}`, `bytes=${'0-1,'.repeat(1000)}0-1`, 'bytes=0x10-20', 'bytes=1e3-2e3', 'bytes=-1-2']) {
      expect(parseRange(h, 100)).toEqual({ kind: 'none' });
    }
  });
});

describe('pagination', () => {
  it('parses n and last', () => {
    expect(parsePagination({}, 100)).toEqual({});
    expect(parsePagination({ n: '10', last: 'b' }, 100)).toEqual({ n: 10, last: 'b' });
    expect(parsePagination({ n: '0' }, 100)).toEqual({ n: 0 });
  });
  it('refuses bad n and last with PAGINATION_NUMBER_INVALID', () => {
    for (const n of ['abc', '-1', '1e3', '1.5', '', ' 1', '101', '9999999999', ['1', '2']]) {
      expect(() => parsePagination({ n }, 100)).toThrow(PaginationInvalidError);
    }
    expect(() => parsePagination({ last: ['a', 'b'] }, 100)).toThrow(PaginationInvalidError);
    expect(() => parsePagination({ last: 'x'.repeat(513) }, 100)).toThrow(PaginationInvalidError);
  });
  it('pages strictly after last, with next while more remain', () => {
    const all = ['a', 'b', 'c', 'd', 'e'];
    expect(paginate(all, { n: 2 }, 100)).toEqual({ items: ['a', 'b'], next: 'b' });
    expect(paginate(all, { n: 2, last: 'b' }, 100)).toEqual({ items: ['c', 'd'], next: 'd' });
    expect(paginate(all, { n: 2, last: 'd' }, 100)).toEqual({ items: ['e'] });
    expect(paginate(all, { n: 3, last: 'b' }, 100)).toEqual({ items: ['c', 'd', 'e'] });
    expect(paginate(all, { n: 0 }, 100)).toEqual({ items: [] });
    expect(paginate(all, { last: 'bb' }, 100)).toEqual({ items: ['c', 'd', 'e'] });
    expect(paginate(all, { last: 'z' }, 100)).toEqual({ items: [] });
    expect(paginate(all, {}, 2)).toEqual({ items: ['a', 'b'], next: 'b' });
  });
  it('writes Distribution\'s Link form', () => {
    expect(nextLink('/v2/_catalog', 2, 'a/b')).toBe('</v2/_catalog?last=a%2Fb&n=2>; rel="next"');
  });
});
