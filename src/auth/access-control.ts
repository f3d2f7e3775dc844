/**
 * Client logins and permissions: HTTP Basic against a bcrypt htpasswd file (the format
 * registry:2's htpasswd auth reads, made by `htpasswd -Bbn user pass`), per-user rules of
 * pull / push / delete by repository glob, optional anonymous pull, and a limit on failed
 * logins per client address and user (and a wider one per address). Passwords never reach a log line.
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
/**
 * One address may fail this many times maxFailures within the window, over all its users: a NAT
 * or a node's many clients get a budget per user, but one address cannot try users without end
 * (each try costs a bcrypt check).
 */
const ADDRESS_FACTOR = 10;
/** bcrypt's own default, for a file with no users yet. */
const DEFAULT_COST = 10;

/**
 * The cost an unknown user's check should take: the most common cost among the file's hashes
 * (the highest among equals), so that a wrong password answers as fast for a user who does not
 * exist as for one who does (`htpasswd -B` makes cost 5).
 */
export function typicalCost(hashes: Iterable<string>): number {
  const seen = new Map<number, number>();
  for (const h of hashes) {
    const cost = Number(h.slice(4, 6));
    seen.set(cost, (seen.get(cost) ?? 0) + 1);
  }
  let best = DEFAULT_COST;
  let most = 0;
  for (const [cost, n] of seen) {
    if (n > most || (n === most && cost > best)) [best, most] = [cost, n];
  }
  return best;
}

/** Failures (and checks still running) per key within a fixed window from the first one. */
class FailureBudget {
  readonly #windows = new LRUCache<string, { count: number; since: number }>({ max: 10_000, ttl: FAILURE_WINDOW });

  constructor(private readonly limit: number) {}

  /** Seconds until `key` may try again; undefined while it is within its budget. */
  exhausted(key: string): number | undefined {
    const w = this.#windows.get(key);
    if (!w || w.count < this.limit) return undefined;
    return Math.max(1, Math.ceil((w.since + FAILURE_WINDOW - Date.now()) / 1000));
  }

  /** Counts one against `key`; the returned release takes it back (the check succeeded). */
  take(key: string): () => void {
    let w = this.#windows.get(key);
    if (!w) this.#windows.set(key, (w = { count: 0, since: Date.now() }));
    const window = w;
    window.count++;
    return () => {
      window.count = Math.max(0, window.count - 1);
    };
  }
}

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
  /** Names every repository ("**"): with delete, the user runs store-wide jobs. */
  everywhere: boolean;
  actions: Set<Action>;
}

/** Told of each failed or refused login (user as given, never the password), before the answer goes out. */
export type FailedLoginHook = (user: string | undefined, remote: string, reason: string) => Promise<void>;

export class AccessControl {
  #users: Map<string, string>;
  readonly #rules?: Rule[];
  /** A hash of the file's typical cost, checked for users who do not exist. */
  #dummy: string;
  /** Logins already checked (bcrypt costs ~0.1 s per check by design): a hash of user and password. */
  readonly #verified = new LRUCache<string, string>({ max: 1000, ttl: 10 * 60_000 });
  /** Failed logins per address and user, and per address. */
  readonly #perUser: FailureBudget;
  readonly #perAddress: FailureBudget;

  private constructor(
    private readonly config: AuthConfig,
    users: Map<string, string>,
    dummy: string,
    private readonly log: Logger,
    private readonly onFailedLogin?: FailedLoginHook,
  ) {
    this.#users = users;
    this.#dummy = dummy;
    this.#perUser = new FailureBudget(config.maxFailures);
    this.#perAddress = new FailureBudget(config.maxFailures * ADDRESS_FACTOR);
    if (config.rules) {
      this.#rules = config.rules.map((r) => ({
        users: new Set(r.users),
        matches: picomatch(r.repositories, { dot: true }),
        everywhere: r.repositories.includes('**'),
        actions: new Set(r.actions),
      }));
    }
  }

  static async load(config: AuthConfig, log: Logger, onFailedLogin?: FailedLoginHook): Promise<AccessControl> {
    const users = await readHtpasswd(config.htpasswd);
    return new AccessControl(config, users, await dummyHash(users), log, onFailedLogin);
  }

  /** Reads the htpasswd file again (SIGHUP); a bad file is refused and the old users kept. */
  async reload(): Promise<void> {
    const users = await readHtpasswd(this.config.htpasswd);
    const dummy = await dummyHash(users);
    this.#users = users;
    this.#dummy = dummy;
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
   * (logged, counted). Each attempt is counted before its bcrypt check, against the address and
   * user and against the address: one over either budget gets 429 until its window passes,
   * without a check. A login already remembered as good passes whatever the budgets.
   */
  async authenticate(header: string | undefined, remote: string): Promise<string | undefined> {
    if (header === undefined || header === '') return undefined;
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    const decoded = m ? Buffer.from(m[1] as string, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      const refused = this.#refuseOver(remote, undefined);
      if (refused) throw await this.#refused(remote, undefined, refused);
      this.#perAddress.take(remote);
      throw await this.#failed(remote, undefined, 'expected HTTP Basic credentials (user:password)');
    }
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = this.#users.get(user);
    const key = createHash('sha256').update(user).update('\0').update(password).digest('hex');
    if (hash !== undefined && this.#verified.get(key) === hash) return user;
    // Checked and taken with no await between: concurrent attempts each see the last one's count.
    const refused = this.#refuseOver(remote, user);
    if (refused) throw await this.#refused(remote, user, refused);
    const releaseUser = this.#perUser.take(`${remote}\0${user}`);
    const releaseAddress = this.#perAddress.take(remote);
    // A missing user costs a bcrypt check of the same cost, so timing does not tell which users exist.
    const ok = await bcrypt.compare(password, hash ?? this.#dummy);
    if (ok && hash !== undefined) {
      releaseUser();
      releaseAddress();
      this.#verified.set(key, hash);
      return user;
    }
    throw await this.#failed(remote, user, 'wrong user name or password');
  }

  /** The 429 when the address, or the address and user, has no failed logins left in this window. */
  #refuseOver(remote: string, user: string | undefined): TooManyRequestsError | undefined {
    const forAddress = this.#perAddress.exhausted(remote);
    const forUser = user === undefined ? undefined : this.#perUser.exhausted(`${remote}\0${user}`);
    const wait = Math.max(forAddress ?? 0, forUser ?? 0);
    if (wait === 0) return undefined;
    const who = forAddress !== undefined ? `from ${remote}` : `of ${user ?? ''} from ${remote}`;
    return new TooManyRequestsError(`too many failed logins ${who}; try again in ${wait} s`, { headers: { 'retry-after': String(wait) } });
  }

  /** Audits a login refused unchecked (over its budget) and returns the 429. */
  async #refused(remote: string, user: string | undefined, e: TooManyRequestsError): Promise<TooManyRequestsError> {
    await this.onFailedLogin?.(user, remote, e.message);
    return e;
  }

  /** Logs (and audits) a failed login, already counted, and makes the 401. */
  async #failed(remote: string, user: string | undefined, message: string): Promise<UnauthorizedError> {
    this.log.warn({ user, remote }, 'login failed');
    await this.onFailedLogin?.(user, remote, message);
    return this.challenge(message);
  }

  /**
   * A stamp of the user's current login (their htpasswd hash), undefined when the user no longer
   * exists: a console session ends when it changes (a new password, a removed user).
   */
  stamp(user: string): string | undefined {
    const hash = this.#users.get(user);
    return hash === undefined ? undefined : createHash('sha256').update(hash).digest('hex');
  }

  /** Whether `user` may run store-wide jobs (gc, verify, the whole prefetch list): delete on every repository ("**"). */
  administers(user: string | undefined): boolean {
    if (user === undefined) return false;
    if (!this.#rules) return true;
    return this.#rules.some((r) => (r.users.has(user) || r.users.has('*')) && r.actions.has('delete') && r.everywhere);
  }

  /** Whether any rule lets `user` delete somewhere (the console shows delete buttons then). */
  deletesSomewhere(user: string | undefined): boolean {
    if (user === undefined) return false;
    if (!this.#rules) return true;
    return this.#rules.some((r) => (r.users.has(user) || r.users.has('*')) && r.actions.has('delete'));
  }

  /** Whether `user` (undefined: anonymous) may do `action` on repository `name`. */
  allowed(user: string | undefined, name: string, action: Action): boolean {
    if (user === undefined) return action === 'pull' && this.anonymousRead;
    if (!this.#rules) return true;
    return this.#rules.some((r) => (r.users.has(user) || r.users.has('*')) && r.actions.has(action) && r.matches(name));
  }
}

/** A hash of a random password at the file's typical cost, for users who do not exist. */
function dummyHash(users: Map<string, string>): Promise<string> {
  return bcrypt.hash(randomBytes(12).toString('hex'), typicalCost(users.values()));
}
