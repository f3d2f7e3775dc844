/**
 * Console logins (http/plugins/ui.ts): a random session id in an HttpOnly cookie, kept only in
 * this process's memory (a restart logs everyone out, and nothing secret touches the store).
 * Each session carries its CSRF token and a stamp of the user's htpasswd entry, so a new
 * password or a removed user ends it at the next request.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export interface Session {
  user: string;
  csrf: string;
  /** The user's login stamp when the session began (AccessControl.stamp). */
  stamp: string;
  created: number;
}

/** Sessions held at once; the least recently used goes first past this. */
const MAX_SESSIONS = 10_000;
/** However active, a session ends after this long: the password is asked again. */
const MAX_AGE_MS = 7 * 24 * 3_600_000;

export class Sessions {
  // Keyed by a hash of the id: the ids themselves are never held, so a heap dump holds no cookie.
  readonly #byHash: LRUCache<string, Session>;

  constructor(idleMs: number) {
    this.#byHash = new LRUCache<string, Session>({ max: MAX_SESSIONS, ttl: idleMs, updateAgeOnGet: true });
  }

  /** A new session for `user`: the cookie's value and the CSRF token the page must send back. */
  create(user: string, stamp: string, now = Date.now()): { id: string; session: Session } {
    const id = randomBytes(32).toString('base64url');
    const session = { user, csrf: randomBytes(24).toString('base64url'), stamp, created: now };
    this.#byHash.set(hashOf(id), session);
    return { id, session };
  }

  /** The session of a cookie value, if it is live and its user's login is unchanged (`stampOf` the current one). */
  get(id: string | undefined, stampOf: (user: string) => string | undefined, now = Date.now()): Session | undefined {
    if (!id || id.length > 100) return undefined;
    const key = hashOf(id);
    const s = this.#byHash.get(key);
    if (!s) return undefined;
    if (now - s.created > MAX_AGE_MS || stampOf(s.user) !== s.stamp) {
      this.#byHash.delete(key);
      return undefined;
    }
    return s;
  }

  delete(id: string | undefined): void {
    if (id) this.#byHash.delete(hashOf(id));
  }

  get size(): number {
    return this.#byHash.size;
  }
}

/** Whether the token a request sent is the session's, compared in constant time. */
export function csrfMatches(session: Session, sent: string | undefined): boolean {
  if (!sent) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(sent);
  return a.length === b.length && timingSafeEqual(a, b);
}

function hashOf(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}
