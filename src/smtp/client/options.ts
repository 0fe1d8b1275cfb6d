/** Per-stage timeouts in milliseconds. */
export interface ClientTimeouts {
  readonly connect: number;
  readonly greeting: number;
  readonly ehlo: number;
  /** STARTTLS command and the TLS handshake after it. */
  readonly starttls: number;
  readonly rset: number;
  readonly mail: number;
  readonly rcpt: number;
  readonly data: number;
  readonly dataEnd: number;
  readonly quit: number;
}

/** RFC 5321 4.5.3.2: greeting 5m, MAIL 5m, RCPT 5m, DATA 2m, end of data 10m; the rest are ours. */
export const DEFAULT_TIMEOUTS: ClientTimeouts = {
  connect: 30_000,
  greeting: 300_000,
  ehlo: 300_000,
  starttls: 120_000,
  rset: 120_000,
  mail: 300_000,
  rcpt: 300_000,
  data: 120_000,
  dataEnd: 600_000,
  quit: 30_000,
};

import type { TranscriptSource } from "../protocol/transcript.ts";

export interface ClientOptions {
  readonly host: string;
  readonly port: number;
  /** Source address to bind (RELAY_SOURCE_IP). */
  readonly localAddress?: string;
  /** Name sent in EHLO/HELO; should match the PTR of the source address. */
  readonly heloName: string;
  /**
   * "opportunistic": STARTTLS when offered, plaintext otherwise (RFC 3207);
   * "required": fail with kind "tls" unless TLS is established; "none": never.
   */
  readonly tls: "opportunistic" | "none" | "required";
  /** SNI and, with tlsVerify, the name the certificate must match; defaults to host. */
  readonly servername?: string;
  /** Verify the server certificate (MTA-STS enforce, DANE); default false. */
  readonly tlsVerify?: boolean;
  /**
   * Without tlsVerify: judge the certificate as tlsVerify would (chain to
   * tlsCa, valid for servername) but accept it either way; what failed is in
   * the session's `tls.certificateProblem` (MTA-STS testing, RFC 8461 5,
   * reported through TLS reporting, RFC 8460).
   */
  readonly tlsAudit?: boolean;
  /** Trust anchors for tlsVerify and tlsAudit instead of the bundled roots (RELAY_TLS_CA_FILE adds to them). */
  readonly tlsCa?: string | Buffer | readonly (string | Buffer)[];
  readonly timeouts?: Partial<ClientTimeouts>;
  /** Largest reply accepted, all lines of a multi-line reply together; default 64 KiB. */
  readonly maxReplyBytes?: number;
  /** Where to write the session's commands and replies, asked as they go; the message shows only as its size. */
  readonly transcript?: TranscriptSource;
}

export function resolveTimeouts(timeouts: Partial<ClientTimeouts> | undefined): ClientTimeouts {
  return { ...DEFAULT_TIMEOUTS, ...timeouts };
}
