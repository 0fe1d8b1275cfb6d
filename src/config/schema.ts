import { isIP } from "node:net";
import * as v from "valibot";
import { parseDuration } from "../core/duration.ts";
import { parseCidrs, parseDnsServers, parseDurations, parseList, parseListeners } from "./parsers.ts";
import { parseHostPort } from "../core/host-port.ts";
import { parseRoutes } from "../core/route.ts";
import { categories, type Category } from "../core/category.ts";
import { type LogFormat, logFormats } from "../core/log.ts";
import { parseMilters, parseScanScope } from "./milters.ts";

/** A variable read from text by `parse`; `expected` is what the error message asks for. */
function textVar<T>(expected: string, parse: (text: string) => T | undefined) {
  return v.pipe(
    v.string(),
    v.rawTransform<string, T>(({ dataset, addIssue, NEVER }) => {
      const value = parse(dataset.value);
      if (value === undefined) {
        addIssue({ message: `expected ${expected}, got ${JSON.stringify(dataset.value)}` });
        return NEVER;
      }
      return value;
    }),
  );
}

const positiveInt = (text: string) => (/^\d+$/.test(text) && Number(text) > 0 ? Number(text) : undefined);
const nonNegativeInt = (text: string) => (/^\d+$/.test(text) ? Number(text) : undefined);
const bool = (text: string) =>
  ({ true: true, "1": true, yes: true, false: false, "0": false, no: false })[
    text.trim().toLowerCase() as "true"
  ];
const oneOf = <T extends string>(...values: T[]) => (text: string) =>
  values.includes(text as T) ? (text as T) : undefined;
/** A duration, or 0/off for "never" (0). */
const durationOrOff = (
  text: string,
) => (["0", "off", "false", "no"].includes(text.trim().toLowerCase()) ? 0 : parseDuration(text));
const bounceCategories = (text: string): Category[] | undefined =>
  ["none", "off"].includes(text.trim().toLowerCase())
    ? []
    : parseList(text, (part) => (categories as readonly string[]).includes(part) ? part as Category : undefined);
const logFormat = (text: string): LogFormat | undefined => (text === "text" ? "pretty" : oneOf(...logFormats)(text));
const nonEmpty = (text: string) => (text.trim() === "" ? undefined : text.trim());
const atLeastOneSecond = (text: string) => {
  const ms = parseDuration(text);
  return ms !== undefined && ms >= 1000 ? ms : undefined;
};
const mailbox = (
  text: string,
) => (/^[^\s@]+@[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text.trim()) ? text.trim() : undefined);
const hostName = (text: string) => (/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text) ? text : undefined);
/** Domains are compared lower-cased everywhere (RFC 5321 2.4): kept that way from the start. */
const domainName = (text: string) => hostName(text)?.toLowerCase();
/** A header field name (RFC 5322 2.2: printable ASCII but colon), at most 76 characters as a line allows. */
const headerFieldName = (text: string) => (/^[!-9;-~]{1,76}$/.test(text.trim()) ? text.trim() : undefined);
const libsqlUrl = (text: string) => (/^(file:|libsql:|https?:|wss?:)/.test(text) ? text : undefined);
const httpUrl = (text: string) => {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && url.search === "" && url.hash === ""
      ? url.href.replace(/\/$/, "")
      : undefined;
  } catch {
    return undefined;
  }
};
const libsqlServerUrl = (text: string) => (/^(libsql:|https?:|wss?:)\/\/./.test(text) ? text : undefined);
const ipAddress = (text: string) => (isIP(text.trim()) !== 0 ? text.trim() : undefined);
/**
 * RELAY_PUBLIC_URL: an https URL, no query or fragment, kept without its
 * trailing slash. Plain http only on a loopback host (a test, or a proxy on
 * the same machine that receivers reach over https): a receiver's one-click
 * POST (RFC 8058 3.1) must go over https.
 */
const publicUrl = (text: string) => {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return undefined;
  }
  const loopback = ["localhost", "[::1]"].includes(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
  const scheme = url.protocol === "https:" || (url.protocol === "http:" && loopback);
  if (!scheme || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") return undefined;
  return url.href.replace(/\/+$/, "");
};
const port = (text: string) => {
  const n = positiveInt(text);
  return n !== undefined && n <= 65535 ? n : undefined;
};

/**
 * Every RELAY_* variable, written once: its parser, the form it expects and
 * its default (SPEC.md, Configuration). The configuration object's fields
 * and their types are derived from it (load.ts).
 */
export const configSchema = v.object({
  /** Embedded database, spool, generated certificate, lock. */
  RELAY_DATA_DIR: v.optional(textVar("a directory path", nonEmpty), "./data"),
  /** The queue database; default file:$RELAY_DATA_DIR/relay.db (load.ts). */
  RELAY_DB_URL: v.optional(textVar("a libSQL URL (file:, libsql:, http(s):, ws(s):)", libsqlUrl)),
  /** Banner and EHLO name; default the system's host name (load.ts). */
  RELAY_HOSTNAME: v.optional(textVar("a host name such as mail.example.com", hostName)),
  RELAY_SMTP_LISTEN: v.optional(textVar("a comma list of host:port", parseListeners), "0.0.0.0:2525"),
  /** Implicit-TLS submission (RFC 8314); none by default. */
  RELAY_SMTPS_LISTEN: v.optional(textVar("a comma list of host:port", parseListeners), ""),
  RELAY_HTTP_LISTEN: v.optional(textVar("host:port", (t) => parseHostPort(t)), "127.0.0.1:8025"),
  /** Both or neither (load.ts); neither: a self-signed certificate under the data directory. */
  RELAY_TLS_CERT_FILE: v.optional(textVar("a file path", nonEmpty)),
  RELAY_TLS_KEY_FILE: v.optional(textVar("a file path", nonEmpty)),
  /** The local address every outbound connection binds to. */
  RELAY_SOURCE_IP: v.optional(textVar("an IPv4 or IPv6 address", ipAddress)),
  /** CIDRs that may relay without SMTP AUTH. */
  RELAY_RELAY_NETWORKS: v.optional(
    textVar("a comma list of CIDRs such as 127.0.0.0/8,::1/128", parseCidrs),
    "127.0.0.0/8,::1/128",
  ),
  /** Unset: one is generated at first start, printed once, stored hashed. */
  RELAY_ADMIN_TOKEN: v.optional(textVar("a token of at least 16 characters", (t) => (t.length >= 16 ? t : undefined))),
  /** Unset: the system resolver's servers. */
  RELAY_DNS_SERVERS: v.optional(textVar("a comma list of ip[:port]", parseDnsServers)),
  RELAY_MX_PORT: v.optional(textVar("a port number 1-65535", port), "25"),
  /** MTA-STS (RFC 8461) for MX deliveries. */
  RELAY_MTA_STS: v.optional(textVar("true or false", bool), "true"),
  /** Port of the MTA-STS policy host (443; tests use a loopback one). */
  RELAY_MTA_STS_PORT: v.optional(textVar("a port number 1-65535", port), "443"),
  /** Extra CA certificates (PEM) trusted for outbound verification: MTA-STS policy fetches, MX certificates, TLS report uploads. */
  RELAY_TLS_CA_FILE: v.optional(textVar("a file path", nonEmpty)),
  /** SMTP TLS reporting (RFC 8460): count TLS outcomes per recipient domain and send the domains that ask for them a report. */
  RELAY_TLSRPT: v.optional(textVar("true or false", bool), "true"),
  /** The report period (RFC 8460 4.1: one day); periods are whole multiples of it since the epoch. */
  RELAY_TLSRPT_INTERVAL: v.optional(textVar("a duration of at least 1s such as 1d", atLeastOneSecond), "1d"),
  /** organization-name in reports; default the host name (load.ts). */
  RELAY_TLSRPT_ORGANIZATION: v.optional(textVar("an organization name", nonEmpty)),
  /** contact-info in reports; default postmaster@<host name> (load.ts). */
  RELAY_TLSRPT_CONTACT: v.optional(textVar("an email address such as postmaster@example.com", mailbox)),
  /** Static routes that override MX lookup. */
  RELAY_ROUTES: v.optional(
    textVar(
      "domain=host:port pairs separated by ; (a domain, an address literal such as [192.0.2.1], or *)",
      parseRoutes,
    ),
    "",
  ),
  RELAY_MAX_MESSAGE_BYTES: v.optional(textVar("a positive integer (bytes)", positiveInt), "26214400"),
  RELAY_MAX_RECIPIENTS: v.optional(textVar("a positive integer", positiveInt), "1000"),
  /** Below this much free space in RELAY_DATA_DIR new mail is refused (452 4.3.1, HTTP 507); what is left serves deliveries. */
  RELAY_MIN_FREE_BYTES: v.optional(textVar("a whole number of bytes (0 or more)", nonNegativeInt), "67108864"),
  /**
   * Messages being received (SMTP DATA/BDAT, HTTP request bodies) may hold this many bytes of memory at
   * once; more wait their turn (SMTP) or are answered 503 (HTTP).
   */
  RELAY_RECEIVING_MEMORY: v.optional(textVar("a positive whole number of bytes", positiveInt), "268435456"),
  /** Concurrent SMTP sessions in all. */
  RELAY_MAX_CONNECTIONS: v.optional(textVar("a positive integer", positiveInt), "2000"),
  /** Concurrent SMTP sessions per client address (RELAY_RELAY_NETWORKS exempt). */
  RELAY_MAX_CONNECTIONS_PER_IP: v.optional(textVar("a positive integer", positiveInt), "100"),
  RELAY_SMTP_IDLE_TIMEOUT: v.optional(textVar("a duration such as 5m", parseDuration), "5m"),
  RELAY_SMTP_MAX_SESSION_TIME: v.optional(textVar("a duration such as 30m", parseDuration), "30m"),
  /** An operator's traffic shaping file laid over the shipped rules (docs/shaping.md); unset: the shipped rules. */
  RELAY_SHAPING_FILE: v.optional(textVar("a file path", nonEmpty)),
  // These five, when set, override the shaping rules' default level (over RELAY_SHAPING_FILE's); unset, the rules' default applies.
  /** Delays between attempts for temporary failures; the last repeats. */
  RELAY_RETRY_SCHEDULE: v.optional(textVar("a comma list of durations such as 5m,10m,1h", parseDurations)),
  /** Outbound connections to one destination at once. */
  RELAY_DESTINATION_MAX_CONNECTIONS: v.optional(textVar("a positive integer", positiveInt)),
  RELAY_MESSAGES_PER_CONNECTION: v.optional(textVar("a positive integer", positiveInt)),
  /** How long an outbound connection waits in the pool for more work before QUIT. */
  RELAY_DESTINATION_IDLE_TIMEOUT: v.optional(textVar("a duration such as 2s", parseDuration)),
  RELAY_RECIPIENTS_PER_TRANSACTION: v.optional(textVar("a positive integer", positiveInt)),
  RELAY_CONNECT_TIMEOUT: v.optional(textVar("a duration such as 30s", parseDuration), "30s"),
  /** Caps every outbound SMTP stage timeout; unset: RFC 5321 4.5.3.2 values. */
  RELAY_COMMAND_TIMEOUT: v.optional(textVar("a duration such as 5m", parseDuration)),
  RELAY_MAX_QUEUE_TIME: v.optional(textVar("a duration such as 5d or 12h", parseDuration), "5d"),
  /**
   * The retry after a recipient's first greylisting reply, when the reply
   * names no wait of its own. 5m: the delay of postgrey (300 s), sqlgrey and
   * rspamd, which most greylisters keep; the retry comes 0-10% later still
   * (jitter), so it passes.
   */
  RELAY_GREYLIST_RETRY: v.optional(textVar("a duration of at least 1s such as 5m", atLeastOneSecond), "5m"),
  /** A "delayed" DSN once a recipient has been deferred this long (RFC 3464); 0: never. */
  RELAY_DELAY_WARNING_AFTER: v.optional(textVar("a duration such as 4h, or 0/off to disable", durationOrOff), "4h"),
  /** Finished messages, their recipients and events are deleted this long after they were received; 0: never. */
  RELAY_RETENTION: v.optional(textVar("a duration such as 30d, or 0/off to keep everything", durationOrOff), "30d"),
  /**
   * Hard bounces of these categories (src/core/category.ts) put their address
   * on the global suppression list, in the transaction that records them;
   * "none" (or "off"): no automatic suppression.
   */
  RELAY_SUPPRESS_BOUNCE_CATEGORIES: v.optional(
    textVar(`a comma list of bounce categories (${categories.join(", ")}), or none`, bounceCategories),
    "bad-mailbox,bad-domain,inactive-mailbox",
  ),
  /** The domain anyone may send to (bounces, complaints). */
  RELAY_BOUNCE_DOMAIN: v.optional(textVar("a domain name", domainName)),
  /**
   * Where receivers reach this node's unsubscribe endpoint (/u/:token): bulk
   * mail carries an https List-Unsubscribe link to it (src/unsubscribe/).
   */
  RELAY_PUBLIC_URL: v.optional(
    textVar("an https URL such as https://relay.example.com (http only for a loopback host)", publicUrl),
  ),
  /**
   * Webhook URLs may lead to loopback, private, shared or link-local
   * addresses (checked on the URL at registration and on every address the
   * name resolves to at connect time); default false, so that whoever may
   * register a webhook cannot make the relay reach the node's own network.
   */
  RELAY_WEBHOOK_ALLOW_PRIVATE: v.optional(textVar("true or false", bool), "false"),
  /** Deadline of one webhook delivery (connect, TLS, request, response); longer counts as a failure and is retried. */
  RELAY_WEBHOOK_TIMEOUT: v.optional(textVar("a duration of at least 1s such as 10s", atLeastOneSecond), "10s"),
  /** The first retry after a failed webhook delivery; each next one waits twice as long (with jitter), up to 1h. */
  RELAY_WEBHOOK_BACKOFF: v.optional(textVar("a duration of at least 1s such as 5s", atLeastOneSecond), "5s"),
  /**
   * verified: SMTP AUTH users and API keys may only send mail whose From
   * domain is a verified sending domain within their grant; any: no From check.
   */
  RELAY_SENDER_POLICY: v.optional(textVar("verified or any", oneOf("verified", "any")), "verified"),
  /**
   * A header field whose value, transactional or bulk, names a message's
   * priority lane (src/ingress/lane.ts); unset: no header is read.
   */
  RELAY_PRIORITY_HEADER: v.optional(textVar("a header field name such as X-Relay-Priority", headerFieldName)),
  /**
   * The domain whose active RSA DKIM key seals ARC sets (RFC 8617) on mail the
   * relay checked and forwards; unset: no sealing.
   */
  RELAY_ARC_DOMAIN: v.optional(textVar("a domain name", domainName)),
  /** How long a replaced DKIM key's record stays listed as needed after a rotation. */
  RELAY_DKIM_ROTATION_GRACE: v.optional(textVar("a duration such as 7d", parseDuration), "7d"),
  /** How often the relay checks DNS for DKIM keys waiting to be published. */
  RELAY_DOMAIN_CHECK_INTERVAL: v.optional(textVar("a duration such as 10m", parseDuration), "10m"),
  /** This node's name in a fleet; default the system's host name (load.ts). */
  RELAY_NODE_ID: v.optional(textVar("a node name", nonEmpty)),
  /**
   * The fleet's shared libSQL server (sqld or Turso): domains, DKIM keys,
   * users, API keys, suppressions, settings and the node registry live there,
   * read from an embedded replica in the data directory (src/fleet/).
   */
  RELAY_SHARED_DB_URL: v.optional(textVar("a libSQL server URL (libsql:, http(s):, ws(s):)", libsqlServerUrl)),
  /** The shared server's auth token (a JWT for sqld's --auth-jwt-key-file, or Turso's). */
  RELAY_SHARED_DB_TOKEN: v.optional(textVar("a token", nonEmpty)),
  /**
   * Where the fleet's other nodes reach this node's HTTP API (GET /v1/queue?node=...);
   * default: RELAY_HTTP_LISTEN's address (src/app/fleet.ts).
   */
  RELAY_NODE_URL: v.optional(textVar("an http(s) URL such as http://10.0.0.2:8025", httpUrl)),
  /** A node silent this long is down: listed so in GET /v1/fleet. */
  RELAY_NODE_DEAD_AFTER: v.optional(textVar("a duration of at least 1s such as 2m", atLeastOneSecond), "2m"),
  /**
   * When a message counts as accepted: on the node's disk (local), or on the
   * fleet's shared server too (replicated: other nodes adopt a dead node's mail).
   */
  RELAY_DURABILITY: v.optional(textVar("local or replicated", oneOf("local", "replicated")), "local"),
  /** Content scanners (milters), in order, each with its default action and timeouts (milters.ts). */
  RELAY_MILTERS: v.optional(
    textVar(
      "a comma list of inet:host:port or unix:/path, each with optional default=accept|tempfail|reject, connect_timeout=, command_timeout=, message_timeout=",
      parseMilters,
    ),
    "",
  ),
  /** Whose mail the milters scan: SMTP users, API keys (and the admin token), the relay networks, mail from outside. */
  RELAY_MILTER_SCOPE: v.optional(
    textVar("a comma list of users, keys, networks, outside, or none", parseScanScope),
    "users,keys,networks",
  ),
  /** Nothing leaves the node: outcomes are simulated per recipient. */
  RELAY_SANDBOX: v.optional(textVar("true or false", bool), "false"),
  RELAY_LOG_LEVEL: v.optional(textVar("debug, info, warn or error", oneOf("debug", "info", "warn", "error")), "info"),
  /** `text` is the old name of `pretty`, still accepted. */
  RELAY_LOG_FORMAT: v.optional(textVar("json or pretty", logFormat), "json"),
});
