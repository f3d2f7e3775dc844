/**
 * WWW-Authenticate parsing (RFC 9110 §11.6.1) for registry challenges:
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`
 * or `Basic realm="…"`. Several challenges may share one header or come in several headers.
 */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;

export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const out: Challenge[] = [];
  for (const h of Array.isArray(header) ? header : [header]) {
    let i = 0;
    let current: Challenge | undefined;
    const skipWs = () => {
      while (i < h.length && (h[i] === ' ' || h[i] === '\t' || h[i] === ',')) i++;
    };
    while (i < h.length) {
      skipWs();
      TOKEN.lastIndex = i;
      const m = TOKEN.exec(h);
      if (!m) { i++; continue; }
      const word = m[0];
      i = TOKEN.lastIndex;
      let j = i;
      while (h[j] === ' ') j++;
      if (h[j] === '=') {
        // auth-param: token = ( token / quoted-string )
        j++;
        while (h[j] === ' ') j++;
        let value = '';
        if (h[j] === '"') {
          j++;
          while (j < h.length && h[j] !== '"') {
            if (h[j] === '\\' && j + 1 < h.length) j++;
            value += h[j];
            j++;
          }
          j++;
        } else {
          TOKEN.lastIndex = j;
          const v = TOKEN.exec(h);
          value = v ? v[0] : '';
          j = v ? TOKEN.lastIndex : j;
        }
        i = j;
        if (current) current.params[word.toLowerCase()] = value;
      } else {
        current = { scheme: word.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}
