import { type Reply, reply } from "../core/reply.ts";
import { type DsnParameters, SmtpClientError, type SmtpClientSession } from "../smtp/client/index.ts";
import { classifyReply, classifyTransportError } from "./classify.ts";
import type { TlsSession } from "./tls-report/session.ts";
import type { Channel, Payload, RecipientResult } from "./work.ts";

/** RFC 5321 4.5.3.1.10: a 452 after some RCPTs were taken means "the rest in another transaction". */
const isTooManyRecipients = (r: Reply) =>
  r.code === 452 && (r.enhanced === "4.5.3" || /too many recipients/i.test(r.lines.join(" ")));

export function transportReply(error: SmtpClientError): Reply {
  return error.reply ?? reply(451, "4.4.1", `${error.kind} at ${error.stage}: ${error.message}`);
}

/** The connection is gone (the server closed or reset it, or it was closed already) rather than slow or confused. */
const isLostConnection = (error: SmtpClientError) =>
  error.kind === "disconnected" || error.kind === "reset" || error.kind === "closed";

/**
 * An SMTP session as a delivery channel: a message's recipients go in
 * transactions of at most `maxRecipients`, and recipients a server refuses
 * with "too many recipients" go in the next transaction on the same connection.
 */
export class SmtpChannel implements Channel {
  /** Read at the start: a socket that has closed no longer knows its addresses. */
  private readonly addresses: { readonly remoteIp?: string; readonly localIp?: string };

  constructor(
    private readonly session: SmtpClientSession,
    readonly remoteMta: string,
    private readonly maxRecipients: number,
    /** The session meets RFC 8689 4.2.1: verified TLS to a validated host that advertised REQUIRETLS. */
    private readonly meetsRequireTls = false,
    readonly tlsSessions: readonly TlsSession[] = [],
  ) {
    this.addresses = { remoteIp: session.remoteAddress, localIp: session.localAddress };
  }

  get usable(): boolean {
    return this.session.usable;
  }

  get closed(): Promise<void> {
    return this.session.closed;
  }

  private get tls() {
    const info = this.session.tls;
    return info ? { version: info.version, cipher: info.cipher } : undefined;
  }

  async send(payload: Payload): Promise<RecipientResult[]> {
    if (payload.requireTls && payload.mailFrom !== "" && !this.meetsRequireTls) {
      // Destination keys keep REQUIRETLS mail off such sessions; should one get here all the same, it is not sent.
      const r = reply(
        451,
        "4.7.10",
        `REQUIRETLS: the session with ${this.remoteMta} does not meet REQUIRETLS; not sent`,
      );
      return payload.recipients.map((address) => ({
        address,
        reply: r,
        ...classifyReply(r),
        remoteMta: this.remoteMta,
        ...this.addresses,
      }));
    }
    const results: RecipientResult[] = [];
    let pending = [...payload.recipients];
    while (pending.length > 0) {
      if (!this.session.usable) {
        results.push(
          ...this.untried(pending, reply(451, "4.4.2", "connection closed before these recipients were tried")),
        );
        break;
      }
      const batch = pending.slice(0, this.maxRecipients);
      const { done, retry } = await this.transaction(payload, batch);
      results.push(...done);
      // Progress is guaranteed: a batch whose every recipient got 452 is deferred, not retried here.
      pending = [...(retry.length < batch.length ? retry : []), ...pending.slice(batch.length)];
      if (retry.length === batch.length) results.push(...this.deferred(retry, "4.5.3"));
    }
    return results;
  }

  /** RFC 3461 parameters for a batch; the client sends them only when the server advertises DSN. */
  private dsnFor(payload: Payload, batch: readonly string[]): DsnParameters | undefined {
    const dsn = payload.dsn;
    if (!dsn) return undefined;
    const byAddress = new Map(payload.recipients.map((address, i) => [address, dsn.recipients[i]]));
    return { ret: dsn.ret, envid: dsn.envid, recipients: batch.map((address) => byAddress.get(address)) };
  }

  /**
   * REQUIRETLS goes on MAIL FROM when the message asks for it and this session meets it (RFC 8689 4.2.1);
   * a bounce of REQUIRETLS mail also goes on sessions that do not, then without it (RFC 8689 5).
   */
  private mailParams(payload: Payload): readonly string[] | undefined {
    if (!payload.requireTls || !this.meetsRequireTls) return payload.mailParams;
    return [...(payload.mailParams ?? []), "REQUIRETLS"];
  }

  private async transaction(payload: Payload, batch: string[]): Promise<{ done: RecipientResult[]; retry: string[] }> {
    // A next hop that does DSN gets NOTIFY/ORCPT and answers for successes itself (RFC 3461 5.2.2).
    const dsnPassedOn = payload.dsn !== undefined && this.session.extensions.has("DSN");
    const extra = { remoteMta: this.remoteMta, ...this.addresses };
    try {
      const envelope = {
        mailFrom: payload.mailFrom,
        recipients: batch,
        mailParams: this.mailParams(payload),
        dsn: this.dsnFor(payload, batch),
      };
      // Queued messages have CRLF line breaks only (src/core/crlf.ts).
      const sent = await this.session.send(envelope, payload.body, "crlf");
      // A 421 to RSET or MAIL: the server closed the session before a recipient was tried.
      if (sent.mail.code === 421) return { done: this.untried(batch, sent.mail), retry: [] };
      const tls = this.tls;
      const done: RecipientResult[] = [];
      const retry: string[] = [];
      for (const { address, reply: rcptReply } of sent.recipients) {
        if (isTooManyRecipients(rcptReply)) {
          retry.push(address);
          continue;
        }
        // An accepted recipient's fate is the reply to the data.
        const final = rcptReply.code < 400 ? (sent.data ?? reply(451, "4.4.2", "no reply to the data")) : rcptReply;
        done.push({
          address,
          reply: final,
          ...classifyReply(final),
          ...extra,
          tls,
          ...(dsnPassedOn ? { dsnPassedOn } : {}),
        });
      }
      return { done, retry };
    } catch (error) {
      if (!(error instanceof SmtpClientError)) throw error;
      // The transaction broke off: recipients already refused keep their reply, the rest are retried later.
      const answered = error.partial?.recipients ?? [];
      const refused = new Map(answered.filter((r) => r.reply.code >= 400).map((r) => [r.address, r.reply]));
      const broken = transportReply(error);
      const kind = error.kind === "timeout" ? "timeout" : "disconnect";
      // Lost before its RCPT was answered, a recipient was not tried (no data went out either).
      const tried = new Set(isLostConnection(error) ? answered.map((r) => r.address) : batch);
      return {
        done: batch.map((address) => {
          const own = refused.get(address);
          if (own) return { address, reply: own, ...classifyReply(own), ...extra };
          const untried = tried.has(address) ? {} : { untried: true };
          return {
            address,
            reply: broken,
            ...classifyTransportError(kind),
            disposition: "deferred" as const,
            ...extra,
            ...untried,
          };
        }),
        retry: [],
      };
    }
  }

  /** Recipients the connection ended before: deferred, and no attempt if the caller can send them on another connection. */
  private untried(addresses: string[], r: Reply): RecipientResult[] {
    const classification = r.code === 421 ? classifyReply(r) : classifyTransportError("disconnect");
    const tls = this.tls;
    return addresses.map((address) => ({
      address,
      reply: r,
      ...classification,
      remoteMta: this.remoteMta,
      ...this.addresses,
      tls,
      untried: true,
    }));
  }

  private deferred(addresses: string[], enhanced: string): RecipientResult[] {
    const r = reply(452, enhanced, "too many recipients; the rest follow in a later attempt");
    return addresses.map((address) => ({
      address,
      reply: r,
      ...classifyReply(r),
      remoteMta: this.remoteMta,
      ...this.addresses,
    }));
  }

  quit(): Promise<void> {
    return this.session.quit();
  }

  close(): void {
    this.session.close();
  }
}
