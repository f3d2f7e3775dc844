/** If-None-Match against a digest ETag, quoted or not, weak or not, or `*` (RFC 9110 §13.1.2). */
export function etagMatches(header: string | string[] | undefined, digest: string): boolean {
  if (header === undefined) return false;
  const values = Array.isArray(header) ? header : [header];
  for (const v of values) {
    for (const raw of v.split(',')) {
      const t = raw.trim().replace(/^W\//, '');
      if (t === '*' || t === digest || t === `"${digest}"`) return true;
    }
  }
  return false;
}
