/**
 * Client logins and permissions: HTTP Basic against a bcrypt htpasswd file (the format
 * registry:2's htpasswd auth reads, made by `htpasswd -Bbn user pass`), per-user rules of
 * pull / push / delete by repository glob, optional anonymous pull, and a per-client limit on
 * failed logins. Passwords never reach a log line.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { LRUCache } from 'lru-cache';
import picomatch from 'picomatch';
import type { AuthConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { TooManyRequestsError, UnauthorizedError } from '../oci/errors.js';

export type Action = 'pull' | 'push' | 'delete';

/** The htpasswd file could not be used: refused at start-up, kept on a reload. */
export class HtpasswdError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HtpasswdError';
  }
}

const FAILURE_WINDOW = 60_000;

/** user → bcrypt hash. Only bcrypt: it is the one scheme Distribution accepts too. */
export async function readHtpasswd(file: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new HtpasswdError(`auth.htpasswd: cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const users = new Map<string, string>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon <= 0) throw new HtpasswdError(`auth.htpasswd: ${file} line ${i + 1} is not "user:hash"`);
    if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
      throw new HtpasswdError(`auth.htpasswd: ${file} line ${i + 1} (user ${user}) is not a bcrypt hash; make it with "htpasswd -B"`);
    }
    users.set(user, hash);
  }
  return users;
}

interface Rule {
  users: Set<string>;
  matches: (name: string) => boolean;
  actions: Set<Action>;
}

export class AccessControl {
  #users: Map<string, string>;
  readonly #rules?: Rule[];
  /** Logins already checked (bcrypt costs ~0.1 s per check by design): a hash of user and password. */
  readonly #verified = new LRUCache<string, string>({ max: 1000, ttl: 10 * 60_000 });
  readonly #failures = new LRUCache<string, { count: number; since: number }>({ max: 10_000, ttl: FAILURE_WINDOW });

  private constructor(private readonly config: AuthConfig, users: Map<string, string>, private readonly dummy: string, private readonly log: Logger) {
    this.#users = users;
    if (config.rules) {
      this.#rules = config.rules.map((r) => ({
        users: new Set(r.users),
        matches: picomatch(r.repositories, { dot: true }),
        actions: new Set(r.actions),
      }));
    }
  }

  static async load(config: AuthConfig, log: Logger): Promise<AccessControl> {
    const users = await readHtpasswd(config.htpasswd);
    return new AccessControl(config, users, await bcrypt.hash(randomBytes(12).toString('hex'), 10), log);
  }

  /** Reads the htpasswd file again (SIGHUP); a bad file is refused and the old users kept. */
  async reload(): Promise<void> {
    this.#users = await readHtpasswd(this.config.htpasswd);
    this.#verified.clear();
  }

  get anonymousRead(): boolean {
    return this.config.anonymous === 'read';
  }

  challenge(message = 'authentication required'): UnauthorizedError {
    return new UnauthorizedError(message, { headers: { 'www-authenticate': `Basic realm="${this.config.realm.replace(/"/g, "'")}"` } });
  }

  /**
   * The user an Authorization header logs in, undefined without one. A wrong login is a 401
   * (logged, counted); a client over its failed-login budget gets 429 until the window passes.
   */
  async authenticate(header: string | undefined, remote: string): Promise<string | undefined> {
    if (header === undefined || header === '') return undefined;
    const failed = this.#failures.get(remote);
    if (failed && failed.count >= this.config.maxFailures) {
      const wait = Math.max(1, Math.ceil((failed.since + FAILURE_WINDOW - Date.now()) / 1000));
      throw new TooManyRequestsError(`too many failed logins from ${remote}; try again in ${wait} s`, { headers: { 'retry-after': String(wait) } });
    }
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    const decoded = m ? Buffer.from(m[1] as string, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw this.#failed(remote, undefined, 'expected HTTP Basic credentials (user:password)');
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = this.#users.get(user);
    const key = createHash('sha256').update(user).update('\0').update(password).digest('hex');
    if (hash !== undefined && this.#verified.get(key) === hash) return user;
    // A missing user costs a bcrypt check as well, so timing does not tell which users exist.
    const ok = await bcrypt.compare(password, hash ?? this.dummy);
    if (ok && hash !== undefined) {
      this.#verified.set(key, hash);
      return user;
    }
    throw this.#failed(remote, user, 'wrong user name or password');
  }

  /** Counts a failed login against the client's budget for the window, logs it, and makes the 401. */
  #failed(remote: string, user: string | undefined, message: string): UnauthorizedError {
    const now = Date.now();
    const f = this.#failures.get(remote);
    this.#failures.set(remote, f ? { count: f.count + 1, since: f.since } : { count: 1, since: now }, { ttl: f ? Math.max(1, f.since + FAILURE_WINDOW - now) : FAILURE_WINDOW });
    this.log.warn({ user, remote }, 'login failed');
    return this.challenge(message);
  }

  /** Whether `user` (undefined: anonymous) may do `action` on repository `name`. */
  allowed(user: string | undefined, name: string, action: Action): boolean {
    if (user === undefined) return action === 'pull' && this.anonymousRead;
    if (!this.#rules) return true;
    return this.#rules.some((r) => (r.users.has(user) || r.users.has('*')) && r.actions.has(action) && r.matches(name));
  }
}
