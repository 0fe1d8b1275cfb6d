import { reply, type Reply } from "../core/reply.ts";
import { SmtpClientError, SmtpClientSession, type ClientOptions } from "../smtp/client/index.ts";
import { classifyReply, classifyTransportError, type Classification } from "./classify.ts";
import type { TargetHost } from "./route.ts";
import { SmtpChannel, transportReply } from "./smtp-channel.ts";
import type { TlsFallbackMemory } from "./tls-memory.ts";
import { DestinationUnreachable, type Channel, type Transport } from "./work.ts";

/** What TLS a host must get: MTA-STS enforce (RFC 8461) requires a verified certificate. */
export type TlsRequirement =
  | { readonly mode: "opportunistic" }
  | { readonly mode: "required"; readonly servername: string }
  | { readonly mode: "refuse"; readonly reason: string };

export interface SmtpTransportDeps {
  readonly heloName: string;
  readonly sourceIp?: string;
  readonly timeouts?: ClientOptions["timeouts"];
  readonly tlsMemory: TlsFallbackMemory;
  /** Recipients per transaction. */
  readonly maxRecipients: number;
  readonly tlsFor: (host: TargetHost) => TlsRequirement;
  /** Trust anchors for verified TLS: the bundled roots plus RELAY_TLS_CA_FILE; default the bundled roots. */
  readonly tlsCa?: ClientOptions["tlsCa"];
}

/** What a host that cannot give the TLS a policy requires gets: deferred, never bounced (RFC 8461 5). */
const tlsPolicyFailure: Classification = { disposition: "deferred", category: "policy-related" };

/** Errors before a transaction starts mean "this host cannot take mail now": try the next one (RFC 5321 5.1). */
function failureClass(error: SmtpClientError): Classification {
  if (error.kind === "reply" && error.reply) return { ...classifyReply(error.reply), disposition: "deferred" };
  return classifyTransportError(error.kind === "timeout" ? "timeout" : error.kind === "tls" ? "tls" : "connect");
}

/** Opens SMTP sessions to a destination's hosts, in MX order, with its TLS policy. */
export class SmtpTransport implements Transport {
  constructor(
    private readonly hosts: readonly TargetHost[],
    private readonly deps: SmtpTransportDeps,
  ) {}

  async open(): Promise<Channel> {
    let last: { reply: Reply; classification: Classification; host?: string } = {
      reply: reply(451, "4.4.1", "no host to try"),
      classification: classifyTransportError("connect"),
    };
    for (const host of this.hosts) {
      const requirement = this.deps.tlsFor(host);
      if (requirement.mode === "refuse") {
        last = { reply: reply(451, "4.7.5", requirement.reason), classification: tlsPolicyFailure, host: host.name };
        continue;
      }
      for (const address of host.addresses) {
        try {
          const session = await this.connect(host, address, requirement);
          return new SmtpChannel(session, host.name, this.deps.maxRecipients);
        } catch (error) {
          if (!(error instanceof SmtpClientError)) throw error;
          if (requirement.mode === "required" && error.kind === "tls") {
            // No STARTTLS, STARTTLS refused, a failed handshake or a certificate not valid for the
            // MX name: this host is not delivered to, and never in plaintext.
            const why = `TLS required by MTA-STS policy for ${requirement.servername}: ${error.message}`;
            last = { reply: reply(451, "4.7.5", why), classification: tlsPolicyFailure, host: host.name };
            continue;
          }
          last = { reply: transportReply(error), classification: failureClass(error), host: host.name };
        }
      }
    }
    throw new DestinationUnreachable(last.reply, last.classification, last.host);
  }

  private async connect(host: TargetHost, address: string, requirement: TlsRequirement): Promise<SmtpClientSession> {
    const memory = this.deps.tlsMemory;
    const required = requirement.mode === "required";
    const options: ClientOptions = {
      host: address,
      port: host.port,
      servername: required ? requirement.servername : host.name,
      tlsVerify: required,
      ...(required && this.deps.tlsCa !== undefined ? { tlsCa: this.deps.tlsCa } : {}),
      localAddress: this.deps.sourceIp,
      heloName: this.deps.heloName,
      tls: required ? "required" : memory.shouldSkipTls(host.name) ? "none" : "opportunistic",
      timeouts: this.deps.timeouts,
    };
    try {
      return await SmtpClientSession.open(options);
    } catch (error) {
      // Opportunistic TLS: a failed handshake is retried in plaintext, and remembered.
      if (required || !(error instanceof SmtpClientError) || error.kind !== "tls") throw error;
      memory.handshakeFailed(host.name);
      return SmtpClientSession.open({ ...options, tls: "none" });
    }
  }
}
