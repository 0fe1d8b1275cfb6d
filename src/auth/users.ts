import { asciiDomain } from "../core/address.ts";
import { UsageError } from "../core/errors.ts";
import { DEFAULT_LANE, type Lane } from "../core/lane.ts";
import type { ScanSetting } from "../core/scan-setting.ts";
import type { CredentialStore, UserRecord } from "../queue/credentials.ts";
import { DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from "./passwords.ts";

export type { UserRecord };

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1024;
const USER_NAME = /^[A-Za-z0-9._@+-]{1,64}$/;
const DOMAIN_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** The problem with a user name, or undefined when it is fine: 1–64 of A–Z a–z 0–9 . _ @ + - */
export function userNameProblem(name: string): string | undefined {
  if (USER_NAME.test(name)) return undefined;
  return `user name ${JSON.stringify(name)} is not valid: expected 1-64 characters of A-Z a-z 0-9 . _ @ + -`;
}

/** The problem with a password, or undefined: at least 8 characters (code points), no NUL (AUTH PLAIN's separator). */
export function passwordProblem(password: string): string | undefined {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) {
    return `password is too short: expected at least ${MIN_PASSWORD_LENGTH} characters, got ${length}`;
  }
  if (length > MAX_PASSWORD_LENGTH) return `password is too long: expected at most ${MAX_PASSWORD_LENGTH} characters`;
  if (password.includes("\0")) return "password must not contain a NUL character";
  return undefined;
}

/**
 * Sender domains as given on a command line or in a request: lower-cased,
 * trailing dot removed, duplicates dropped. Throws UsageError listing every
 * invalid one.
 */
export function normalizeDomains(domains: readonly string[]): string[] {
  const result: string[] = [];
  const problems: string[] = [];
  for (const raw of domains) {
    const domain = asciiDomain(raw);
    const labels = domain.split(".");
    if (domain.length === 0 || domain.length > 253 || labels.length < 2 || !labels.every((l) => DOMAIN_LABEL.test(l))) {
      problems.push(`domain ${JSON.stringify(raw)} is not valid: expected a domain name such as example.com`);
    } else if (!result.includes(domain)) {
      result.push(domain);
    }
  }
  if (problems.length > 0) throw new UsageError(problems);
  return result;
}

/**
 * Whether `domains` (a user's or key's grant) allows mail from
 * `senderDomain`. An empty grant allows any domain. Otherwise the match is
 * exact and case-insensitive: a grant of example.com does NOT cover
 * mail.example.com (grant that separately), so a grant never reaches further
 * than what the operator typed.
 */
export function domainAllowed(domains: readonly string[], senderDomain: string): boolean {
  if (domains.length === 0) return true;
  const wanted = asciiDomain(senderDomain);
  return wanted !== "" && domains.some((d) => d.toLowerCase() === wanted);
}

/** SMTP AUTH users: who may submit, and from which sender domains. */
export class UserService {
  private readonly verify: (password: string, stored: string) => Promise<boolean>;

  /** `verify` is replaceable for tests that count verifications; it defaults to verifyPassword. */
  constructor(
    private readonly store: CredentialStore,
    options: { verify?: (password: string, stored: string) => Promise<boolean> } = {},
  ) {
    this.verify = options.verify ?? verifyPassword;
  }

  /**
   * Add a user; its mail is transactional unless `lane` says otherwise, and scanned as RELAY_MILTER_SCOPE says unless `scan`
   * does. Throws UsageError for an invalid name, password or domain (all problems listed) and for a name that is taken.
   */
  async add(
    input: { name: string; password: string; domains?: readonly string[]; lane?: Lane; scan?: ScanSetting },
  ): Promise<UserRecord> {
    const problems = [userNameProblem(input.name), passwordProblem(input.password)].filter((p): p is string =>
      p !== undefined
    );
    let domains: string[] = [];
    try {
      domains = normalizeDomains(input.domains ?? []);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      problems.push(...error.problems);
    }
    if (problems.length > 0) throw new UsageError(problems);
    if (await this.store.getUser(input.name)) {
      throw new UsageError([`user ${JSON.stringify(input.name)} already exists`]);
    }
    const hash = await hashPassword(input.password);
    if (!(await this.store.addUser(input.name, hash, domains, input.lane ?? DEFAULT_LANE, input.scan ?? null))) {
      throw new UsageError([`user ${JSON.stringify(input.name)} already exists`]);
    }
    const user = await this.store.getUser(input.name);
    if (!user) throw new Error(`user ${JSON.stringify(input.name)} vanished right after it was added`);
    return user;
  }

  /** Returns false when there is no such user. */
  remove(name: string): Promise<boolean> {
    return this.store.removeUser(name);
  }

  list(): Promise<UserRecord[]> {
    return this.store.listUsers();
  }

  get(name: string): Promise<UserRecord | undefined> {
    return this.store.getUser(name);
  }

  /**
   * The user when the password is right, else undefined. An unknown name
   * costs one scrypt like a known one (verified against a dummy hash), so the
   * time taken does not tell which names exist. Names are case-sensitive.
   */
  async authenticate(username: string, password: string): Promise<UserRecord | undefined> {
    const user = userNameProblem(username) === undefined ? await this.store.getUser(username) : undefined;
    const ok = await this.verify(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
    return ok && user ? user : undefined;
  }

  /** Whether `user` may use `senderDomain` in MAIL FROM / From: see domainAllowed (empty = any; exact match only). */
  maySendFrom(user: Pick<UserRecord, "domains">, senderDomain: string): boolean {
    return domainAllowed(user.domains, senderDomain);
  }
}
