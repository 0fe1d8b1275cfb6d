import type { InboundAuth } from "../auth/inbound/index.ts";
import { formatMailbox, type Mailbox } from "../core/address.ts";
import { cidrContains } from "../core/cidr.ts";
import type { Lane } from "../core/lane.ts";
import type { ScanSetting } from "../core/scan-setting.ts";
import { type Reply, reply } from "../core/reply.ts";
import type { SessionInfo, SmtpServerHooks } from "../smtp/server/index.ts";
import { type AccessPolicy, type LiteralRefusal, literalRefusal, mayRelay } from "./access.ts";
import type { AuthThrottle } from "./auth-throttle.ts";
import { SenderRefused, type Submitter } from "./sender-policy.ts";
import { ContentRefused, type Ingress, InsufficientStorage } from "./submit.ts";

/** What an authenticated user may do: the sender domains it may use, the priority lane and content scanning of its mail. */
export interface SmtpGrant {
  readonly domains: readonly string[];
  readonly lane: Lane;
  /** true: always scanned, false: never, null: as RELAY_MILTER_SCOPE says. */
  readonly scan: ScanSetting;
}

/** Checks SMTP AUTH credentials; what the user may do comes back with it. */
export interface SmtpAuthenticator {
  authenticate(username: string, password: string): Promise<SmtpGrant | undefined>;
}

export interface SmtpHookDeps {
  readonly ingress: Ingress;
  readonly policy: AccessPolicy;
  readonly authenticator: SmtpAuthenticator;
  readonly throttle: AuthThrottle;
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * SPF/DKIM/DMARC/ARC checks for mail from outside: unauthenticated clients
   * outside RELAY_RELAY_NETWORKS (which may only send to RELAY_BOUNCE_DOMAIN).
   * Without it such mail is queued unchecked.
   */
  readonly inbound?: InboundAuth;
  /**
   * Reads mail to RELAY_BOUNCE_DOMAIN (bounces, complaints: feedback/receiver.ts).
   * That mail is never queued: relaying it onward would hand anyone an open relay to
   * the bounce domain's MX. Without a reader it is queued like any other.
   */
  readonly bounceReader?: BounceReader;
  /**
   * While the node takes no new mail (a drain), the 421 to answer a new
   * connection and a new transaction with; undefined while it does.
   */
  readonly refuseNewMail?: () => Reply | undefined;
}

/** One message's recipients at the bounce domain, handed over instead of queued. */
export interface BounceReader {
  receive(mail: { recipients: readonly string[]; mailFrom: string; body: Uint8Array; clientIp: string }): Promise<void>;
}

/**
 * 550 5.7.1 (delivery not authorized) for a literal of this node or its
 * networks; 553 (mailbox name not allowed) with 5.1.2 or 5.1.8 (bad
 * destination or sender system address, RFC 3463) for one that reaches no host.
 */
function literalReply(refusal: LiteralRefusal, role: "sender" | "recipient", mailbox: Mailbox): Reply {
  const text = `${role} <${formatMailbox(mailbox)}> refused: ${refusal.text}`;
  if (refusal.kind === "internal") return reply(550, "5.7.1", text);
  return reply(553, role === "sender" ? "5.1.8" : "5.1.2", text);
}

/** RFC 3463 4.3.1 "mail system full"; 452 "insufficient system storage" (RFC 5321 4.2.2, RFC 1870 6.1). */
const INSUFFICIENT_STORAGE = reply(452, "4.3.1", "Insufficient system storage; try again later");

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The SMTP front end's decisions: who may authenticate, which sender domains
 * an authenticated user may use, relay control at RCPT, and the durable
 * enqueue at the end of DATA.
 */
export function smtpHooks(deps: SmtpHookDeps): SmtpServerHooks {
  const { ingress, policy, authenticator, throttle } = deps;
  const sleep = deps.sleep ?? defaultSleep;
  /** What each authenticated session may do (sender domains lower-cased); gone with the session. */
  const granted = new WeakMap<SessionInfo, SmtpGrant>();

  const refuseNewMail = deps.refuseNewMail ?? (() => undefined);

  return {
    async onConnect() {
      return refuseNewMail();
    },

    async onAuth(session, { username, password }) {
      const gate = throttle.attempt(session.remoteAddress);
      if (gate.delayMs > 0) await sleep(gate.delayMs);
      if (gate.kind === "refuse") {
        return reply(454, "4.7.0", "too many failed authentication attempts from your address; try again later");
      }
      const check = () => authenticator.authenticate(username, password);
      const user = await (gate.suspect ? throttle.suspectCheck(check) : check());
      if (!user) return reply(535, "5.7.8", "authentication credentials invalid");
      throttle.succeeded(session.remoteAddress);
      granted.set(session, { domains: user.domains.map((d) => d.toLowerCase()), lane: user.lane, scan: user.scan });
      return undefined;
    },

    async onMailFrom(session, from, params) {
      // A session open before the drain began sends no new transaction (RFC 5321 3.8: 421 closes the channel).
      const closed = refuseNewMail();
      if (closed) return closed;
      // Before the client sends a message the disk has no room for: its declared SIZE counts (RFC 1870 6.1).
      if (!ingress.hasRoom(params.size)) return INSUFFICIENT_STORAGE;
      // Bounces go to the reverse-path: one at a literal the relay may not deliver to is refused like a recipient there.
      const refused = from && literalRefusal(policy.literals, from.domain);
      if (refused) return literalReply(refused, "sender", from);
      const domains = granted.get(session)?.domains;
      if (session.user === undefined || !domains || domains.length === 0 || from === null) return undefined;
      if (!domains.includes(from.domain.toLowerCase())) {
        return reply(553, "5.7.1", `sender domain ${from.domain} is not allowed for user ${session.user}`);
      }
      return undefined;
    },

    async onRcptTo(session, to) {
      if (!mayRelay(policy, { ip: session.remoteAddress, authUser: session.user }, to.domain)) {
        return reply(554, "5.7.1", `relay access denied for <${formatMailbox(to)}>`);
      }
      const refused = literalRefusal(policy.literals, to.domain);
      if (refused) return literalReply(refused, "recipient", to);
      return undefined;
    },

    async onData(session, envelope, message) {
      const bounceDomain = policy.bounceDomain?.toLowerCase();
      const atBounceDomain = (r: { mailbox: Mailbox }) =>
        deps.bounceReader !== undefined && r.mailbox.domain.toLowerCase() === bounceDomain;
      const feedback = envelope.recipients.filter(atBounceDomain);
      const mailFrom = envelope.mailFrom ? formatMailbox(envelope.mailFrom) : "";
      if (feedback.length > 0) {
        await deps.bounceReader!.receive({
          recipients: feedback.map((r) => formatMailbox(r.mailbox)),
          mailFrom,
          body: message,
          clientIp: session.remoteAddress,
        });
      }
      const onward = envelope.recipients.filter((r) => !atBounceDomain(r));
      if (onward.length === 0) return reply(250, "2.0.0", "OK read as feedback, not queued");
      let body = message;
      let authResults: Record<string, unknown> | undefined;
      const submitter: Submitter = session.user !== undefined
        ? "smtp-user"
        : cidrContains(policy.relayNetworks, session.remoteAddress)
        ? "relay-network"
        : "outside";
      if (deps.inbound && submitter === "outside") {
        const stamped = await deps.inbound.stamp(message, {
          clientIp: session.remoteAddress,
          heloName: session.heloName,
          mailFrom: mailFrom || null,
        });
        body = stamped.message;
        authResults = stamped.record;
      }
      // The sender policy (RELAY_SENDER_POLICY) is about the From header, which only exists once the
      // message is in: it cannot be decided at MAIL FROM (the envelope sender may differ from From),
      // so a refusal is the reply to the data, and nothing is queued.
      let id: string;
      try {
        ({ id } = await ingress.submit({
          mailFrom,
          recipients: onward.map((r) => ({
            address: formatMailbox(r.mailbox),
            notify: r.params.notify,
            orcpt: r.params.orcpt,
          })),
          body,
          source: "smtp",
          submitter,
          clientIp: session.remoteAddress,
          clientHelo: session.heloName,
          authUser: session.user,
          senderDomains: granted.get(session)?.domains,
          submitterLane: granted.get(session)?.lane,
          scan: granted.get(session)?.scan ?? undefined,
          tls: session.secure,
          dsnRet: envelope.mailParams.ret,
          dsnEnvid: envelope.mailParams.envid,
          requireTls: envelope.mailParams.requireTls,
          authResults,
        }));
      } catch (error) {
        if (error instanceof SenderRefused) return reply(550, "5.7.1", error.message);
        if (error instanceof ContentRefused) return error.reply;
        if (error instanceof InsufficientStorage) return INSUFFICIENT_STORAGE;
        throw error;
      }
      return reply(250, "2.0.0", `OK queued as ${id}`);
    },
  };
}
