/** The path and query of a request target, also when a client sent it in absolute form (RFC 9112 §3.2.2). */
export function originForm(url: string): string {
  if (url.startsWith('/')) return url;
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(.*)$/i.exec(url);
  return m?.[1] ? m[1] : '/';
}
