import * as v from "valibot";
import { UsageError } from "../core/errors.ts";
import { configSchema } from "./schema.ts";
import type { HostPort } from "../core/host-port.ts";
import type { Route } from "../core/route.ts";
import type { Cidr } from "../core/cidr.ts";

export interface Config {
  readonly dataDir: string;
  readonly dbUrl: string;
  readonly hostname: string;
  readonly smtpListen: readonly HostPort[];
  readonly smtpsListen: readonly HostPort[];
  readonly httpListen: HostPort;
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
  readonly sourceIp?: string;
  readonly relayNetworks: readonly Cidr[];
  readonly adminToken?: string;
  readonly dnsServers?: readonly HostPort[];
  readonly mxPort: number;
  readonly routes: readonly Route[];
  /** MTA-STS (RFC 8461) for MX deliveries. */
  readonly mtaSts: boolean;
  /** Port of the MTA-STS policy host (443; tests use a loopback one). */
  readonly mtaStsPort: number;
  /** Extra CA certificates (PEM) trusted for outbound verification: MTA-STS policy fetches, MX certificates, TLS report uploads. */
  readonly tlsCaFile?: string;
  /** SMTP TLS reporting (RFC 8460): count TLS outcomes per recipient domain and send the domains that ask for them a report. */
  readonly tlsRpt: boolean;
  /** The report period (RFC 8460 4.1: one day); periods are whole multiples of it since the epoch. */
  readonly tlsRptInterval: number;
  /** organization-name in reports; default the host name. */
  readonly tlsRptOrganization: string;
  /** contact-info in reports; default postmaster@<host name>. */
  readonly tlsRptContact: string;
  readonly maxMessageBytes: number;
  readonly maxRecipients: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly smtpIdleTimeout: number;
  readonly smtpMaxSessionTime: number;
  readonly retrySchedule: readonly number[];
  readonly maxQueueTime: number;
  /** A "delayed" DSN once a recipient has been deferred this long (RFC 3464); 0: never. */
  readonly delayWarningAfter: number;
  /** Finished messages, their recipients and events are deleted this long after they were received; 0: never. */
  readonly retention: number;
  /** Outbound connections to one destination at once. */
  readonly destinationMaxConnections: number;
  readonly messagesPerConnection: number;
  /** How long an outbound connection waits in the pool for more work before QUIT. */
  readonly destinationIdleTimeout: number;
  readonly recipientsPerTransaction: number;
  readonly connectTimeout: number;
  /** Caps every outbound SMTP stage timeout; unset: RFC 5321 4.5.3.2 values. */
  readonly commandTimeout?: number;
  readonly bounceDomain?: string;
  /**
   * verified: SMTP AUTH users and API keys may only send mail whose From
   * domain is a verified sending domain within their grant; any: no From check.
   */
  readonly senderPolicy: "verified" | "any";
  /**
   * The domain whose active RSA DKIM key seals ARC sets (RFC 8617) on mail the
   * relay checked and forwards; unset: no sealing.
   */
  readonly arcDomain?: string;
  /** How long a replaced DKIM key's record stays listed as needed after a rotation. */
  readonly dkimRotationGrace: number;
  /** How often the relay checks DNS for DKIM keys waiting to be published. */
  readonly domainCheckInterval: number;
  readonly nodeId: string;
  readonly sharedDbUrl?: string;
  readonly sharedDbToken?: string;
  readonly durability: "local" | "replicated";
  readonly sandbox: boolean;
  readonly logLevel: "debug" | "info" | "warn" | "error";
  readonly logFormat: "json" | "text";
}

/**
 * Validate the environment. Every invalid variable is reported, one per line,
 * naming the variable and the form it expects; the caller exits with status 2.
 */
export function loadConfig(env: Record<string, string | undefined>, systemHostname: string): Config {
  const relevant = Object.fromEntries(
    Object.entries(env).filter(([k, value]) => k.startsWith("RELAY_") && value !== undefined && value !== ""),
  );
  const result = v.safeParse(configSchema, relevant, { abortEarly: false });
  const problems = result.success
    ? []
    : result.issues.map((issue) => `${v.getDotPath(issue) ?? "configuration"}: ${issue.message}`);
  if (("RELAY_TLS_CERT_FILE" in relevant) !== ("RELAY_TLS_KEY_FILE" in relevant)) {
    problems.push("RELAY_TLS_CERT_FILE, RELAY_TLS_KEY_FILE: expected both or neither to be set");
  }
  if (!result.success || problems.length > 0) throw new UsageError(problems);
  const raw = result.output;
  const dataDir = raw.RELAY_DATA_DIR;
  const hostname = raw.RELAY_HOSTNAME ?? systemHostname;
  return {
    dataDir,
    dbUrl: raw.RELAY_DB_URL ?? `file:${dataDir.replace(/\/$/, "")}/relay.db`,
    hostname,
    smtpListen: raw.RELAY_SMTP_LISTEN,
    smtpsListen: raw.RELAY_SMTPS_LISTEN,
    httpListen: raw.RELAY_HTTP_LISTEN,
    tlsCertFile: raw.RELAY_TLS_CERT_FILE,
    tlsKeyFile: raw.RELAY_TLS_KEY_FILE,
    sourceIp: raw.RELAY_SOURCE_IP,
    relayNetworks: raw.RELAY_RELAY_NETWORKS,
    adminToken: raw.RELAY_ADMIN_TOKEN,
    dnsServers: raw.RELAY_DNS_SERVERS,
    mxPort: raw.RELAY_MX_PORT,
    routes: raw.RELAY_ROUTES,
    mtaSts: raw.RELAY_MTA_STS,
    mtaStsPort: raw.RELAY_MTA_STS_PORT,
    tlsCaFile: raw.RELAY_TLS_CA_FILE,
    tlsRpt: raw.RELAY_TLSRPT,
    tlsRptInterval: raw.RELAY_TLSRPT_INTERVAL,
    tlsRptOrganization: raw.RELAY_TLSRPT_ORGANIZATION ?? hostname,
    tlsRptContact: raw.RELAY_TLSRPT_CONTACT ?? `postmaster@${hostname}`,
    maxMessageBytes: raw.RELAY_MAX_MESSAGE_BYTES,
    maxRecipients: raw.RELAY_MAX_RECIPIENTS,
    maxConnections: raw.RELAY_MAX_CONNECTIONS,
    maxConnectionsPerIp: raw.RELAY_MAX_CONNECTIONS_PER_IP,
    smtpIdleTimeout: raw.RELAY_SMTP_IDLE_TIMEOUT,
    smtpMaxSessionTime: raw.RELAY_SMTP_MAX_SESSION_TIME,
    retrySchedule: raw.RELAY_RETRY_SCHEDULE,
    maxQueueTime: raw.RELAY_MAX_QUEUE_TIME,
    delayWarningAfter: raw.RELAY_DELAY_WARNING_AFTER,
    retention: raw.RELAY_RETENTION,
    destinationMaxConnections: raw.RELAY_DESTINATION_MAX_CONNECTIONS,
    messagesPerConnection: raw.RELAY_MESSAGES_PER_CONNECTION,
    destinationIdleTimeout: raw.RELAY_DESTINATION_IDLE_TIMEOUT,
    recipientsPerTransaction: raw.RELAY_RECIPIENTS_PER_TRANSACTION,
    connectTimeout: raw.RELAY_CONNECT_TIMEOUT,
    commandTimeout: raw.RELAY_COMMAND_TIMEOUT,
    bounceDomain: raw.RELAY_BOUNCE_DOMAIN?.toLowerCase(),
    senderPolicy: raw.RELAY_SENDER_POLICY,
    arcDomain: raw.RELAY_ARC_DOMAIN?.toLowerCase(),
    dkimRotationGrace: raw.RELAY_DKIM_ROTATION_GRACE,
    domainCheckInterval: raw.RELAY_DOMAIN_CHECK_INTERVAL,
    nodeId: raw.RELAY_NODE_ID ?? systemHostname,
    sharedDbUrl: raw.RELAY_SHARED_DB_URL,
    sharedDbToken: raw.RELAY_SHARED_DB_TOKEN,
    durability: raw.RELAY_DURABILITY,
    sandbox: raw.RELAY_SANDBOX,
    logLevel: raw.RELAY_LOG_LEVEL,
    logFormat: raw.RELAY_LOG_FORMAT,
  };
}
