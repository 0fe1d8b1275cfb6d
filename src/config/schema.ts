import { isIP } from "node:net";
import * as v from "valibot";
import { parseDuration } from "../core/duration.ts";
import {
  parseCidrs,
  parseDnsServers,
  parseDurations,
  parseListeners,
} from "./parsers.ts";
import { parseHostPort } from "../core/host-port.ts";
import { parseRoutes } from "../core/route.ts";

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
const bool = (text: string) => ({ true: true, "1": true, yes: true, false: false, "0": false, no: false })[
  text.trim().toLowerCase() as "true"
];
const oneOf = <T extends string>(...values: T[]) => (text: string) =>
  values.includes(text as T) ? (text as T) : undefined;
/** A duration, or 0/off for "never" (0). */
const durationOrOff = (text: string) => (["0", "off", "false", "no"].includes(text.trim().toLowerCase()) ? 0 : parseDuration(text));
const nonEmpty = (text: string) => (text.trim() === "" ? undefined : text.trim());
const atLeastOneSecond = (text: string) => {
  const ms = parseDuration(text);
  return ms !== undefined && ms >= 1000 ? ms : undefined;
};
const mailbox = (text: string) => (/^[^\s@]+@[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text.trim()) ? text.trim() : undefined);
const hostName = (text: string) => (/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text) ? text : undefined);
const libsqlUrl = (text: string) => (/^(file:|libsql:|https?:|wss?:)/.test(text) ? text : undefined);
const ipAddress = (text: string) => (isIP(text.trim()) !== 0 ? text.trim() : undefined);

/**
 * Every RELAY_* variable: its parser and the form it expects. The single
 * source of truth for configuration (SPEC.md, Configuration).
 */
export const configSchema = v.object({
  RELAY_DATA_DIR: v.optional(textVar("a directory path", nonEmpty), "./data"),
  RELAY_DB_URL: v.optional(textVar("a libSQL URL (file:, libsql:, http(s):, ws(s):)", libsqlUrl)),
  RELAY_HOSTNAME: v.optional(textVar("a host name such as mail.example.com", hostName)),
  RELAY_SMTP_LISTEN: v.optional(textVar("a comma list of host:port", parseListeners), "0.0.0.0:2525"),
  RELAY_SMTPS_LISTEN: v.optional(textVar("a comma list of host:port", parseListeners), ""),
  RELAY_HTTP_LISTEN: v.optional(textVar("host:port", (t) => parseHostPort(t)), "127.0.0.1:8025"),
  RELAY_TLS_CERT_FILE: v.optional(textVar("a file path", nonEmpty)),
  RELAY_TLS_KEY_FILE: v.optional(textVar("a file path", nonEmpty)),
  RELAY_SOURCE_IP: v.optional(textVar("an IPv4 or IPv6 address", ipAddress)),
  RELAY_RELAY_NETWORKS: v.optional(
    textVar("a comma list of CIDRs such as 127.0.0.0/8,::1/128", parseCidrs),
    "127.0.0.0/8,::1/128",
  ),
  RELAY_ADMIN_TOKEN: v.optional(textVar("a token of at least 16 characters", (t) => (t.length >= 16 ? t : undefined))),
  RELAY_DNS_SERVERS: v.optional(textVar("a comma list of ip[:port]", parseDnsServers)),
  RELAY_MX_PORT: v.optional(textVar("a port number 1-65535", (t) => {
    const n = positiveInt(t);
    return n !== undefined && n <= 65535 ? n : undefined;
  }), "25"),
  RELAY_MTA_STS: v.optional(textVar("true or false", bool), "true"),
  RELAY_MTA_STS_PORT: v.optional(textVar("a port number 1-65535", (t) => {
    const n = positiveInt(t);
    return n !== undefined && n <= 65535 ? n : undefined;
  }), "443"),
  RELAY_TLS_CA_FILE: v.optional(textVar("a file path", nonEmpty)),
  RELAY_TLSRPT: v.optional(textVar("true or false", bool), "true"),
  RELAY_TLSRPT_INTERVAL: v.optional(textVar("a duration of at least 1s such as 1d", atLeastOneSecond), "1d"),
  RELAY_TLSRPT_ORGANIZATION: v.optional(textVar("an organization name", nonEmpty)),
  RELAY_TLSRPT_CONTACT: v.optional(textVar("an email address such as postmaster@example.com", mailbox)),
  RELAY_ROUTES: v.optional(textVar("domain=host:port pairs separated by ; (a domain, an address literal such as [192.0.2.1], or *)", parseRoutes), ""),
  RELAY_MAX_MESSAGE_BYTES: v.optional(textVar("a positive integer (bytes)", positiveInt), "26214400"),
  RELAY_MAX_RECIPIENTS: v.optional(textVar("a positive integer", positiveInt), "1000"),
  RELAY_MAX_CONNECTIONS: v.optional(textVar("a positive integer", positiveInt), "2000"),
  RELAY_MAX_CONNECTIONS_PER_IP: v.optional(textVar("a positive integer", positiveInt), "100"),
  RELAY_SMTP_IDLE_TIMEOUT: v.optional(textVar("a duration such as 5m", parseDuration), "5m"),
  RELAY_SMTP_MAX_SESSION_TIME: v.optional(textVar("a duration such as 30m", parseDuration), "30m"),
  RELAY_RETRY_SCHEDULE: v.optional(
    textVar("a comma list of durations such as 5m,10m,1h", parseDurations),
    "5m,10m,20m,40m,1h,2h,4h",
  ),
  RELAY_DESTINATION_MAX_CONNECTIONS: v.optional(textVar("a positive integer", positiveInt), "20"),
  RELAY_MESSAGES_PER_CONNECTION: v.optional(textVar("a positive integer", positiveInt), "100"),
  RELAY_DESTINATION_IDLE_TIMEOUT: v.optional(textVar("a duration such as 2s", parseDuration), "2s"),
  RELAY_RECIPIENTS_PER_TRANSACTION: v.optional(textVar("a positive integer", positiveInt), "100"),
  RELAY_CONNECT_TIMEOUT: v.optional(textVar("a duration such as 30s", parseDuration), "30s"),
  RELAY_COMMAND_TIMEOUT: v.optional(textVar("a duration such as 5m", parseDuration)),
  RELAY_MAX_QUEUE_TIME: v.optional(textVar("a duration such as 5d or 12h", parseDuration), "5d"),
  RELAY_DELAY_WARNING_AFTER: v.optional(textVar("a duration such as 4h, or 0/off to disable", durationOrOff), "4h"),
  RELAY_RETENTION: v.optional(textVar("a duration such as 30d, or 0/off to keep everything", durationOrOff), "30d"),
  RELAY_BOUNCE_DOMAIN: v.optional(textVar("a domain name", hostName)),
  RELAY_SENDER_POLICY: v.optional(textVar("verified or any", oneOf("verified", "any")), "verified"),
  RELAY_ARC_DOMAIN: v.optional(textVar("a domain name", hostName)),
  RELAY_DKIM_ROTATION_GRACE: v.optional(textVar("a duration such as 7d", parseDuration), "7d"),
  RELAY_DOMAIN_CHECK_INTERVAL: v.optional(textVar("a duration such as 10m", parseDuration), "10m"),
  RELAY_NODE_ID: v.optional(textVar("a node name", nonEmpty)),
  RELAY_SHARED_DB_URL: v.optional(textVar("a libSQL URL", libsqlUrl)),
  RELAY_SHARED_DB_TOKEN: v.optional(textVar("a token", nonEmpty)),
  RELAY_DURABILITY: v.optional(textVar("local or replicated", oneOf("local", "replicated")), "local"),
  RELAY_SANDBOX: v.optional(textVar("true or false", bool), "false"),
  RELAY_LOG_LEVEL: v.optional(textVar("debug, info, warn or error", oneOf("debug", "info", "warn", "error")), "info"),
  RELAY_LOG_FORMAT: v.optional(textVar("json or text", oneOf("json", "text")), "json"),
});

export type RawConfig = v.InferOutput<typeof configSchema>;
