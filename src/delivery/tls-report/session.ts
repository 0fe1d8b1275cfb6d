import type { TlsResultType } from "./result-type.ts";

/** Why one session did not get the TLS its policy asks for (RFC 8460 4.4 failure-details). */
export interface TlsFailure {
  readonly resultType: TlsResultType;
  /** failure-reason-code: the TLS error code or a short text. */
  readonly reasonCode?: string;
}

/**
 * What one attempt to reach one MX host address showed about TLS: a
 * successful session (RFC 8460 4.2.1) or a failed one (4.2.2) with the
 * hosts it involved (4.4 failure-details). Attempts that failed before TLS
 * came into it (a refused connection, a timeout) are not sessions to report
 * (RFC 8460 4.3.4: transient failures need not be reported).
 */
export interface TlsSession {
  /** receiving-mx-hostname */
  readonly mxHost: string;
  /** receiving-ip; absent when no connection was made (an MX host the policy does not list). */
  readonly receivingIp?: string;
  /** sending-mta-ip */
  readonly sendingIp?: string;
  /** Absent: TLS as the policy asks. */
  readonly failure?: TlsFailure;
}
