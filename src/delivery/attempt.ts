import { reply, type Reply } from "../core/reply.ts";
import { SmtpClientError, SmtpClientSession, type ClientOptions } from "../smtp/client/index.ts";
import { classifyReply, classifyTransportError, type Classification } from "./classify.ts";
import type { RouteResult, TargetHost } from "./route.ts";

/** The outcome of one attempt for one recipient. */
export interface RecipientResult extends Classification {
  readonly address: string;
  readonly reply: Reply;
  readonly remoteMta?: string;
  readonly tls?: { readonly version: string; readonly cipher: string };
}

export interface AttemptInput {
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  readonly message: Uint8Array;
  readonly mailParams?: readonly string[];
}

export interface AttemptDeps {
  readonly heloName: string;
  readonly sourceIp?: string;
  readonly timeouts?: ClientOptions["timeouts"];
  /** Sessions open right now, so shutdown can close them. */
  readonly openSessions: Set<SmtpClientSession>;
}

/** Errors before a transaction starts mean "this host cannot take mail now": try the next one (RFC 5321 5.1). */
function isHostFailure(error: SmtpClientError): boolean {
  return ["connect", "greeting", "ehlo", "helo", "starttls", "tls"].includes(error.stage);
}

function transportReply(error: SmtpClientError): Reply {
  if (error.reply) return error.reply;
  return reply(451, "4.4.1", `${error.kind} at ${error.stage}: ${error.message}`);
}

/**
 * Deliver one message to the recipients of one domain: hosts in order, the
 * first that takes the transaction decides each recipient's outcome.
 */
export async function attemptDelivery(route: RouteResult, input: AttemptInput, deps: AttemptDeps): Promise<RecipientResult[]> {
  const all = (r: Reply, c: Classification, extra: Partial<RecipientResult> = {}): RecipientResult[] =>
    input.recipients.map((address) => ({ address, reply: r, ...c, ...extra }));
  if (route.kind === "permanent") {
    return all(reply(550, route.status, route.reason), { disposition: "bounced", category: "bad-domain" });
  }
  if (route.kind === "temporary") {
    return all(reply(451, "4.4.3", route.reason), classifyTransportError("dns"));
  }
  let lastFailure: RecipientResult[] = all(reply(451, "4.4.1", "no host to try"), classifyTransportError("connect"));
  for (const host of route.hosts) {
    for (const address of host.addresses) {
      const result = await tryHost(host, address, input, deps);
      if (result.kind === "done") return result.results;
      lastFailure = all(result.reply, result.reply.code >= 400 && result.error.kind === "reply"
        ? { ...classifyReply(result.reply), disposition: "deferred" }
        : classifyTransportError(result.error.kind === "timeout" ? "timeout" : result.error.kind === "tls" ? "tls" : "connect"),
        { remoteMta: host.name });
    }
  }
  return lastFailure;
}

type HostAttempt =
  | { readonly kind: "done"; readonly results: RecipientResult[] }
  | { readonly kind: "next"; readonly reply: Reply; readonly error: SmtpClientError };

/**
 * Opportunistic TLS (RFC 3207): when the STARTTLS handshake itself fails, the
 * same host is tried again in plaintext rather than not at all.
 */
async function openSession(host: TargetHost, address: string, deps: AttemptDeps): Promise<SmtpClientSession> {
  const options = {
    host: address,
    port: host.port,
    servername: host.name,
    localAddress: deps.sourceIp,
    heloName: deps.heloName,
    tls: "opportunistic" as const,
    timeouts: deps.timeouts,
  };
  try {
    return await SmtpClientSession.open(options);
  } catch (error) {
    if (error instanceof SmtpClientError && error.kind === "tls") return SmtpClientSession.open({ ...options, tls: "none" });
    throw error;
  }
}

async function tryHost(host: TargetHost, address: string, input: AttemptInput, deps: AttemptDeps): Promise<HostAttempt> {
  let session: SmtpClientSession | undefined;
  try {
    session = await openSession(host, address, deps);
    deps.openSessions.add(session);
    const sent = await session.send(
      { mailFrom: input.mailFrom, recipients: input.recipients, mailParams: input.mailParams },
      input.message,
    );
    await session.quit();
    const extra = { remoteMta: host.name, tls: session.tls ? { version: session.tls.version, cipher: session.tls.cipher } : undefined };
    return {
      kind: "done",
      results: sent.recipients.map(({ address: rcpt, reply: rcptReply }) => {
        // An accepted recipient's fate is the reply to the data (RFC 5321 4.2.5 for the single-reply case).
        const final = rcptReply.code < 400 ? (sent.data ?? reply(451, "4.4.2", "no reply to the data")) : rcptReply;
        return { address: rcpt, reply: final, ...classifyReply(final), ...extra };
      }),
    };
  } catch (error) {
    if (!(error instanceof SmtpClientError)) throw error;
    if (isHostFailure(error)) return { kind: "next", reply: transportReply(error), error };
    // The transaction broke off: recipients already refused keep their reply, the rest are retried.
    const refused = new Map((error.partial?.recipients ?? []).filter((r) => r.reply.code >= 400).map((r) => [r.address, r.reply]));
    const broken = transportReply(error);
    return {
      kind: "done",
      results: input.recipients.map((rcpt) => {
        const own = refused.get(rcpt);
        if (own) return { address: rcpt, reply: own, ...classifyReply(own), remoteMta: host.name };
        const c = error.kind === "timeout" ? classifyTransportError("timeout") : classifyTransportError("disconnect");
        return { address: rcpt, reply: broken, ...c, disposition: "deferred" as const, remoteMta: host.name };
      }),
    };
  } finally {
    if (session) {
      session.close();
      deps.openSessions.delete(session);
    }
  }
}

