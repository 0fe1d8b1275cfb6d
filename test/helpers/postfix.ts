/**
 * A private Postfix instance (Debian package postfix, with libsasl2-modules
 * for the SMTP client's SASL PLAIN/LOGIN) configured as a null client that
 * relays everything to one relayhost with SASL over mandatory TLS.
 *
 *   const postfix = await startPostfix({ relayPort, saslUser: "alice", saslPassword: "..." });
 *   await postfix.sendmail("alice@sender.test", ["to@dest.test"], message);
 *   await postfix.waitForLog(/status=sent/);
 *   await postfix.stop();
 *
 * Everything lives in one temporary directory: etc/ (the config_directory:
 * main.cf, master.cf and the SASL password table written here), queue/ (the
 * queue_directory), data/ (data_directory) and maillog (maillog_file, no
 * syslog). Its only listener is an smtpd on a free
 * loopback port; it never reads or touches /etc/postfix/{main,master}.cf or
 * the system instance, if there is one. `postfix start` needs root (the
 * master runs as root and drops privileges to the postfix user per daemon).
 *
 * `postfixMissing` is a reason to skip, or undefined (see `peerMissing`).
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canConnect, NOT_INSTALLED, peerMissing, runPeer, type RunResult } from "./peers.ts";
import { freePort } from "./relay-process.ts";
import { waitUntil } from "./wait-until.ts";

export const POSTFIX = "/usr/sbin/postfix";
/** Postfix's sendmail (the package conflicts with every other MTA's, so /usr/sbin/sendmail is Postfix's when postfix is installed). */
export const POSTFIX_SENDMAIL = "/usr/sbin/sendmail";
/** virtual(8), the delivery agent of a Postfix destination. */
const POSTFIX_VIRTUAL = "/usr/lib/postfix/sbin/virtual";

function saslPlainInstalled(): boolean {
  // Cyrus SASL's PLAIN client mechanism, from libsasl2-modules, under the multiarch libdir.
  for (const lib of ["/usr/lib", "/usr/lib64"]) {
    if (existsSync(join(lib, "sasl2", "libplain.so.2"))) return true;
    let entries: string[] = [];
    try {
      entries = readdirSync(lib);
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (entry.includes("-linux-") && existsSync(join(lib, entry, "sasl2", "libplain.so.2"))) return true;
    }
  }
  return false;
}

const NEEDS_ROOT = "needs root to start a private instance (`postfix start` refuses to run otherwise)";
const notRoot = process.getuid?.() !== 0;

export const postfixMissing: string | undefined =
  peerMissing(POSTFIX, "postfix", !(existsSync(POSTFIX) && existsSync(POSTFIX_SENDMAIL)) && NOT_INSTALLED) ??
    peerMissing("Cyrus SASL's PLAIN mechanism", "libsasl2-modules", !saslPlainInstalled() && NOT_INSTALLED) ??
    peerMissing(POSTFIX, "postfix", notRoot && NEEDS_ROOT);

export interface PostfixOptions {
  /** The relay's SMTP port on 127.0.0.1: relayhost = [127.0.0.1]:relayPort. */
  relayPort: number;
  saslUser: string;
  saslPassword: string;
  /** Default "postfix.test". */
  myhostname?: string;
}

export interface Postfix {
  /** The temporary directory, holding etc/, queue/, data/ and maillog. */
  readonly dir: string;
  /** Its config_directory (`postfix -c`, `sendmail -C`): dir/etc. */
  readonly configDir: string;
  /** The private smtpd's port on 127.0.0.1. */
  readonly smtpPort: number;
  /** The maillog so far. */
  log(): string;
  /** Wait until the maillog matches `pattern`; returns the match. Bounded: rejects after `timeoutMs` (default 30 s) with the log. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** `sendmail -C configDir -i -f from -- to...` with the message on stdin. */
  sendmail(from: string, recipients: string[], message: string): Promise<RunResult>;
  /** `postfix -c configDir <args>` (e.g. ["flush"]). */
  postfix(args: string[]): Promise<RunResult>;
  /** `postfix -c configDir stop` (it escalates to SIGKILL itself after 5 s), then remove the directory. Idempotent. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

function postfixEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith("RELAY_") || key === "MAIL_CONFIG") continue;
    env[key] = value;
  }
  env.LC_ALL = "C";
  return env;
}

/** Run a Postfix command to completion (killed after `timeoutMs`: a safety net, not a threshold). */
function run(file: string, args: string[], input = "", timeoutMs = 60_000): Promise<RunResult> {
  return runPeer(file, args, { input, timeoutMs, env: postfixEnv() });
}

function mainCf(dir: string, smtpPort: number, options: PostfixOptions): string {
  const nexthop = `[127.0.0.1]:${options.relayPort}`;
  return `# A private null-client instance for relay's end-to-end tests.
compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
syslog_name = postfix-test-${smtpPort}

myhostname = ${options.myhostname ?? "postfix.test"}
mydomain = postfix.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
relay_domains =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
biff = no
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =

relayhost = ${nexthop}
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = texthash:${dir}/etc/sasl_passwd
smtp_sasl_security_options = noanonymous
smtp_sasl_tls_security_options = noanonymous
smtp_tls_security_level = encrypt
smtp_tls_loglevel = 1
smtp_host_lookup = native
`;
}

export function masterCf(smtpPort: number, extra = ""): string {
  // No chroot anywhere (a chroot would need copies of /etc files in the queue directory).
  return `# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:${smtpPort} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
${extra}`;
}

export async function startPostfix(options: PostfixOptions): Promise<Postfix> {
  return startInstance((dir, smtpPort, configDir) => {
    writeFileSync(join(configDir, "main.cf"), mainCf(dir, smtpPort, options), { mode: 0o644 });
    writeFileSync(join(configDir, "master.cf"), masterCf(smtpPort), { mode: 0o644 });
    // texthash: read as is, no postmap; the value may contain spaces.
    writeFileSync(
      join(configDir, "sasl_passwd"),
      `[127.0.0.1]:${options.relayPort} ${options.saslUser}:${options.saslPassword}\n`,
      { mode: 0o600 },
    );
  });
}

/** Why a Postfix destination cannot run here (skip reason), or undefined. SASL modules are not needed. */
export const postfixDestinationMissing: string | undefined =
  peerMissing(POSTFIX, "postfix", !existsSync(POSTFIX) && NOT_INSTALLED) ??
    peerMissing(POSTFIX_VIRTUAL, "postfix", !existsSync(POSTFIX_VIRTUAL) && NOT_INSTALLED) ??
    peerMissing(POSTFIX, "postfix", notRoot && NEEDS_ROOT);

export interface PostfixDestinationOptions {
  /** Domains whose mail is accepted and delivered to the one maildir; default ["dest.test"]. */
  domains?: string[];
  /** Default "postfix-dest.test". */
  myhostname?: string;
  /** Offer STARTTLS with this certificate (smtpd_tls_security_level = may); default: no TLS. */
  tls?: { cert: string; key: string };
  /** Uid/gid the virtual(8) agent writes the maildir as; default 65534 (nobody/nogroup). */
  uid?: number;
  gid?: number;
}

export interface PostfixDestination extends Postfix {
  /** The maildir every accepted message is delivered to (virtual_mailbox_maps = static:mailbox/). */
  readonly maildir: string;
  /** The delivered messages (maildir new/ and cur/), oldest first by file name. */
  messages(): string[];
}

/**
 * A private Postfix that is the final destination for `domains`: smtpd on a
 * free loopback port accepts mail for them from anyone (reject_unauth_destination
 * for the rest) and virtual(8) delivers every recipient into one maildir,
 * dir/mail/mailbox/. No local delivery, no relaying, no DNS (no outbound mail at all).
 */
export async function startPostfixDestination(options: PostfixDestinationOptions = {}): Promise<PostfixDestination> {
  const uid = options.uid ?? 65534;
  const gid = options.gid ?? 65534;
  const domains = options.domains ?? ["dest.test"];
  let mailBase = "";
  const instance = await startInstance((dir, smtpPort, configDir) => {
    mailBase = join(dir, "mail");
    mkdirSync(mailBase, { mode: 0o755 });
    chownSync(mailBase, uid, gid);
    let tls = "";
    if (options.tls) {
      writeFileSync(join(configDir, "smtpd.crt"), options.tls.cert, { mode: 0o644 });
      writeFileSync(join(configDir, "smtpd.key"), options.tls.key, { mode: 0o600 });
      tls = `smtpd_tls_security_level = may
smtpd_tls_cert_file = ${configDir}/smtpd.crt
smtpd_tls_key_file = ${configDir}/smtpd.key
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
`;
    }
    writeFileSync(
      join(configDir, "main.cf"),
      `# A private final-destination instance for relay's end-to-end tests.
compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
syslog_name = postfix-dest-${smtpPort}

myhostname = ${options.myhostname ?? "postfix-dest.test"}
mydomain = postfix-dest.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
relay_domains =
relayhost =
local_recipient_maps =
local_transport = error:local delivery is disabled
default_transport = error:this instance sends no mail out
alias_maps =
alias_database =
biff = no
disable_dns_lookups = yes
smtp_host_lookup = native
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_helo_required = yes

virtual_mailbox_domains = ${domains.join(", ")}
virtual_mailbox_base = ${mailBase}
virtual_mailbox_maps = static:mailbox/
virtual_uid_maps = static:${uid}
virtual_gid_maps = static:${gid}
virtual_minimum_uid = 1
virtual_transport = virtual
${tls}`,
      { mode: 0o644 },
    );
    writeFileSync(
      join(configDir, "master.cf"),
      masterCf(smtpPort, "virtual   unix  -       n       n       -       -       virtual\n"),
      { mode: 0o644 },
    );
  });
  const maildir = join(mailBase, "mailbox");
  return {
    ...instance,
    maildir,
    messages() {
      const files: string[] = [];
      for (const sub of ["new", "cur"]) {
        let names: string[] = [];
        try {
          names = readdirSync(join(maildir, sub));
        } catch {
          continue;
        }
        for (const name of names.sort()) files.push(readFileSync(join(maildir, sub, name), "utf8"));
      }
      return files;
    },
  };
}

/**
 * A private instance in a new temporary directory: `configure` writes
 * main.cf and master.cf (and whatever else) into configDir; then `postfix
 * start`, and wait until the smtpd on smtpPort accepts connections.
 */
async function startInstance(configure: (dir: string, smtpPort: number, configDir: string) => void): Promise<Postfix> {
  const dir = mkdtempSync(join(tmpdir(), "relay-postfix-"));
  // The daemons run as the postfix user and open absolute paths under here.
  chmodSync(dir, 0o755);
  const smtpPort = await freePort();
  // Separate trees: `postfix check` wants the config directory all root's, the queue mostly the postfix user's.
  const configDir = join(dir, "etc");
  mkdirSync(configDir, { mode: 0o755 });
  mkdirSync(join(dir, "queue"), { mode: 0o755 });
  configure(dir, smtpPort, configDir);
  const logFile = join(dir, "maillog");

  const log = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  const postfix = (args: string[]) => run(POSTFIX, ["-c", configDir, ...args]);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Stops the master when it runs (SIGTERM, then SIGKILL of its process group after 5 s); a no-op otherwise.
    await postfix(["stop"]);
    rmSync(dir, { recursive: true, force: true });
  };

  const started = await postfix(["start"]);
  let listening = false;
  if (started.code === 0) {
    for (let i = 0; i < 100 && !listening; i++) {
      listening = await canConnect(smtpPort);
      if (!listening) await sleep(100);
    }
  }
  if (!listening) {
    const why = `postfix -c ${configDir} start: exit ${started.code}, smtpd on 127.0.0.1:${smtpPort} ${
      listening ? "up" : "not listening"
    }\n${started.stdout}${started.stderr}\n--- maillog ---\n${log()}`;
    await stop();
    throw new Error(why);
  }

  return {
    dir,
    configDir,
    smtpPort,
    log,
    async waitForLog(pattern, timeoutMs = 30_000) {
      const maillog = await waitUntil(log, (text) => pattern.test(text), {
        what: `a Postfix log line matching ${pattern}`,
        timeout: timeoutMs,
        every: 50,
      });
      return pattern.exec(maillog)!;
    },
    sendmail(from, recipients, message) {
      return run(POSTFIX_SENDMAIL, ["-C", configDir, "-i", "-f", from, "--", ...recipients], message);
    },
    postfix,
    stop,
  };
}
