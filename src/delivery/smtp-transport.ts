import { type Reply, reply } from "../core/reply.ts";
import { type ClientOptions, SmtpClientError, SmtpClientSession } from "../smtp/client/index.ts";
import type { TranscriptSource } from "../smtp/protocol/index.ts";
import { type Classification, classifyReply, classifyTransportError } from "./classify.ts";
import type { TargetHost } from "./route.ts";
import { SmtpChannel, transportReply } from "./smtp-channel.ts";
import type { TlsFallbackMemory } from "./tls-memory.ts";
import { resultTypeOfCertificate, resultTypeOfTlsError } from "./tls-report/result-type.ts";
import type { TlsFailure, TlsSession } from "./tls-report/session.ts";
import { type Channel, DestinationUnreachable, type Transport } from "./work.ts";

/** What TLS a host must get: MTA-STS enforce (RFC 8461) and REQUIRETLS (RFC 8689) require a verified certificate. */
export type TlsRequirement =
  | { readonly mode: "opportunistic"; readonly audit?: TlsAudit }
  | { readonly mode: "required"; readonly servername: string }
  | { readonly mode: "refuse"; readonly reason: string };

/**
 * MTA-STS testing (RFC 8461 5): what enforce would ask of the host, checked
 * but not required, so that TLS reporting (RFC 8460) tells the domain what
 * would have failed.
 */
export interface TlsAudit {
  /** The name the certificate would have to be valid for. */
  readonly servername: string;
  /** Why the host would be refused: the policy does not list it (RFC 8461 4.1). */
  readonly refusal?: string;
}

export interface SmtpTransportDeps {
  readonly heloName: string;
  readonly sourceIp?: string;
  readonly timeouts?: ClientOptions["timeouts"];
  readonly tlsMemory: TlsFallbackMemory;
  /** Recipients per transaction, read at each connection (the shaping rules may change meanwhile). */
  readonly maxRecipients: () => number;
  readonly tlsFor: (host: TargetHost) => TlsRequirement;
  /**
   * REQUIRETLS (RFC 8689 4.2.1): tlsFor gives every host "required" or
   * "refuse", and a host must also advertise REQUIRETLS after STARTTLS. A
   * host that fails any of it is passed over; when none is left the message
   * is not sent and bounces (5.7.10, or 5.7.30 for a server without REQUIRETLS).
   */
  readonly requireTls?: boolean;
  /** Trust anchors for verified TLS: the bundled roots plus RELAY_TLS_CA_FILE; default the bundled roots. */
  readonly tlsCa?: ClientOptions["tlsCa"];
  /** Where a connection to this host and address writes its transcript (an operator's SMTP trace). */
  readonly transcript?: (host: TargetHost, address: string) => TranscriptSource;
}

/** What a host that cannot give the TLS a policy requires gets: deferred, never bounced (RFC 8461 5). */
const tlsPolicyFailure: Classification = { disposition: "deferred", category: "policy-related" };

interface HostFailure {
  readonly reply: Reply;
  readonly classification: Classification;
  readonly host?: string;
  /** The address tried, when a connection was attempted. */
  readonly address?: string;
}

/** A REQUIRETLS failure: a 5xx through the classification table, so a bounce (RFC 8689 4.2.1). */
function requireTlsFailure(enhanced: "5.7.10" | "5.7.30", text: string, host: string): HostFailure {
  const r = reply(550, enhanced, text);
  return { reply: r, classification: classifyReply(r), host };
}

/** Errors before a transaction starts mean "this host cannot take mail now": try the next one (RFC 5321 5.1). */
function failureClass(error: SmtpClientError): Classification {
  if (error.kind === "reply" && error.reply) return { ...classifyReply(error.reply), disposition: "deferred" };
  return classifyTransportError(error.kind === "timeout" ? "timeout" : error.kind === "tls" ? "tls" : "connect");
}

/**
 * What an open session shows about TLS (RFC 8460 4.2, 4.3): nothing wrong
 * (verified TLS where it was required, any TLS where it was not), or no
 * STARTTLS offered, or, under an MTA-STS testing policy, a host or a
 * certificate that enforce would have refused.
 */
function sessionFailure(session: SmtpClientSession, requirement: TlsRequirement): TlsFailure | undefined {
  if (!session.tls) return { resultType: "starttls-not-supported" };
  const audit = requirement.mode === "opportunistic" ? requirement.audit : undefined;
  if (audit?.refusal !== undefined) return { resultType: "validation-failure", reasonCode: audit.refusal };
  const problem = session.tls.certificateProblem;
  return problem ? { resultType: resultTypeOfCertificate(problem.code), reasonCode: problem.code } : undefined;
}

/** Opens SMTP sessions to a destination's hosts, in MX order, with its TLS policy. */
export class SmtpTransport implements Transport {
  constructor(
    private readonly hosts: readonly TargetHost[],
    private readonly deps: SmtpTransportDeps,
  ) {}

  async open(): Promise<Channel> {
    // Every host tried on the way, for TLS reporting (RFC 8460 4.2): the channel or the failure carries them.
    const sessions: TlsSession[] = [];
    let last: HostFailure = {
      reply: reply(451, "4.4.1", "no host to try"),
      classification: classifyTransportError("connect"),
    };
    // A host that may take the mail later outweighs one that never will: such a failure defers, not bounces.
    let deferral: HostFailure | undefined;
    const failed = (failure: HostFailure) => {
      last = failure;
      if (failure.classification.disposition === "deferred") deferral = failure;
    };
    for (const host of this.hosts) {
      const requirement = this.deps.tlsFor(host);
      if (requirement.mode === "refuse") {
        // Not connected to at all: a policy validation failure (RFC 8460 4.3.3), without a receiving-ip.
        const failure: TlsFailure = { resultType: "validation-failure", reasonCode: requirement.reason };
        sessions.push({ mxHost: host.name, sendingIp: this.deps.sourceIp, failure });
        failed(this.tlsFailure(requirement.reason, host.name));
        continue;
      }
      for (const address of host.addresses) {
        let session: SmtpClientSession;
        try {
          const opened = await this.connect(host, address, requirement);
          session = opened.session;
          const failure = opened.tlsFallback ?? sessionFailure(session, requirement);
          const sendingIp = session.localAddress ?? this.deps.sourceIp;
          sessions.push({ mxHost: host.name, receivingIp: address, sendingIp, ...(failure ? { failure } : {}) });
        } catch (error) {
          if (!(error instanceof SmtpClientError)) throw error;
          if (error.kind === "tls") {
            const failure: TlsFailure = {
              resultType: resultTypeOfTlsError(error),
              reasonCode: error.code ?? error.message,
            };
            sessions.push({ mxHost: host.name, receivingIp: address, sendingIp: this.deps.sourceIp, failure });
          }
          if (requirement.mode === "required" && error.kind === "tls") {
            // No STARTTLS, STARTTLS refused, a failed handshake or a certificate not valid for the
            // MX name: this host is not delivered to, and never in plaintext.
            const why = this.deps.requireTls
              ? "REQUIRETLS: no verified TLS with"
              : "TLS required by MTA-STS policy for";
            failed(this.tlsFailure(`${why} ${requirement.servername}: ${error.message}`, host.name));
            continue;
          }
          failed({ reply: transportReply(error), classification: failureClass(error), host: host.name, address });
          continue;
        }
        // RFC 8689 2: verified TLS with a validated name (required) and REQUIRETLS advertised after it.
        const meetsRequireTls = requirement.mode === "required" && session.extensions.has("REQUIRETLS");
        if (this.deps.requireTls && !meetsRequireTls) {
          // RFC 8689 4.2.1: "the client MUST issue a QUIT to the server" and try the next MX host.
          await session.quit();
          failed(
            requireTlsFailure(
              "5.7.30",
              `REQUIRETLS: ${host.name} does not advertise REQUIRETLS after STARTTLS`,
              host.name,
            ),
          );
          break;
        }
        return new SmtpChannel(session, host.name, this.deps.maxRecipients(), meetsRequireTls, sessions);
      }
    }
    const worst = deferral ?? last;
    throw new DestinationUnreachable(
      worst.reply,
      worst.classification,
      worst.host,
      sessions,
      worst.address,
      this.deps.sourceIp,
    );
  }

  /** A host refused, or not reached over verified TLS: MTA-STS defers (RFC 8461 5), REQUIRETLS bounces (RFC 8689 4.2.1). */
  private tlsFailure(text: string, host: string): HostFailure {
    if (this.deps.requireTls) return requireTlsFailure("5.7.10", text, host);
    return { reply: reply(451, "4.7.5", text), classification: tlsPolicyFailure, host };
  }

  /** `tlsFallback`: opportunistic TLS failed (now or recently) and the session is in plaintext. */
  private async connect(
    host: TargetHost,
    address: string,
    requirement: TlsRequirement,
  ): Promise<{ session: SmtpClientSession; tlsFallback?: TlsFailure }> {
    const memory = this.deps.tlsMemory;
    const required = requirement.mode === "required";
    const audit = requirement.mode === "opportunistic" ? requirement.audit : undefined;
    const skipTls = !required && memory.shouldSkipTls(host.name);
    const options: ClientOptions = {
      host: address,
      port: host.port,
      servername: required ? requirement.servername : (audit?.servername ?? host.name),
      tlsVerify: required,
      tlsAudit: audit !== undefined,
      ...((required || audit) && this.deps.tlsCa !== undefined ? { tlsCa: this.deps.tlsCa } : {}),
      localAddress: this.deps.sourceIp,
      heloName: this.deps.heloName,
      tls: required ? "required" : skipTls ? "none" : "opportunistic",
      timeouts: this.deps.timeouts,
      transcript: this.deps.transcript?.(host, address),
    };
    try {
      const session = await SmtpClientSession.open(options);
      if (!skipTls) return { session };
      return {
        session,
        tlsFallback: {
          resultType: "validation-failure",
          reasonCode: "STARTTLS skipped after a recent failed handshake",
        },
      };
    } catch (error) {
      // Opportunistic TLS: a failed handshake is retried in plaintext, and remembered.
      if (required || !(error instanceof SmtpClientError) || error.kind !== "tls") throw error;
      memory.handshakeFailed(host.name);
      const session = await SmtpClientSession.open({ ...options, tls: "none" });
      return {
        session,
        tlsFallback: { resultType: resultTypeOfTlsError(error), reasonCode: error.code ?? error.message },
      };
    }
  }
}
