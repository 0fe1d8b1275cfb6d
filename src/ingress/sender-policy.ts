/**
 * RELAY_SENDER_POLICY: may this submitter send mail whose RFC 5322 From is at
 * this domain? One decision for both front ends (SMTP and HTTP), taken by
 * Ingress.submit before anything is signed or stored; the front ends only
 * turn a refusal into their protocol's answer (550 5.7.1, 403).
 *
 * `verified` (the default) applies to SMTP AUTH users and HTTP API keys: the
 * From domain must be in the submitter's grant (its sender domains, none =
 * any) and a verified sending domain of the relay: one added with `relay
 * domains add` whose active DKIM key's record a DNS check has seen published
 * at least once (DomainService.isVerified; sending_domains.verified_at).
 *
 * Not checked: the admin token and clients inside RELAY_RELAY_NETWORKS
 * without AUTH. Those are the operator's own trusted systems (the admin
 * token can add and verify domains itself; a trusted network is the
 * operator's own application servers, as Postfix's mynetworks), and mail
 * from outside (unauthenticated, only to RELAY_BOUNCE_DOMAIN) is bounces
 * and complaints, whose From is somebody else's by nature.
 *
 * `any` turns the From check off: what was there before it (the envelope
 * sender limited to the grant at MAIL FROM / in the API, DKIM signing only
 * for granted, added domains) is unchanged.
 */
import { domainAllowed } from "../auth/users.ts";

export const SENDER_POLICIES = ["verified", "any"] as const;
export type SenderPolicyMode = (typeof SENDER_POLICIES)[number];

/** Who handed the message in: decides whether the sender policy applies. */
export type Submitter =
  /** HTTP with the admin token. */
  | "admin"
  /** HTTP with an API key. */
  | "api-key"
  /** SMTP after AUTH. */
  | "smtp-user"
  /** SMTP without AUTH from inside RELAY_RELAY_NETWORKS. */
  | "relay-network"
  /** SMTP without AUTH from anywhere else (may only send to RELAY_BOUNCE_DOMAIN). */
  | "outside"
  /** The relay itself: its TLS reports (RFC 8460), From an address at RELAY_HOSTNAME. */
  | "relay";

/** Everything the decision depends on. */
export interface SenderFacts {
  readonly mode: SenderPolicyMode;
  readonly submitter: Submitter;
  /** The From header's domain (A-labels); undefined without a From, or when it names more than one domain. */
  readonly fromDomain: string | undefined;
  /** The submitter's sender domains; empty = any. */
  readonly grant: readonly string[];
  /** Whether fromDomain is a verified sending domain (not asked when it does not matter). */
  readonly verified: boolean;
}

export type SenderRefusal = "no-from-domain" | "outside-grant" | "unverified";

export type SenderDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: SenderRefusal; readonly domain?: string; readonly text: string };

const ALLOWED: SenderDecision = Object.freeze({ allowed: true });

/** Whether the From check applies to this submitter at all. */
export function policyApplies(mode: SenderPolicyMode, submitter: Submitter): boolean {
  return mode === "verified" && (submitter === "api-key" || submitter === "smtp-user");
}

/** The decision table (pure). */
export function decideSender(f: SenderFacts): SenderDecision {
  if (!policyApplies(f.mode, f.submitter)) return ALLOWED;
  if (f.fromDomain === undefined) {
    return {
      allowed: false,
      reason: "no-from-domain",
      text: "the message needs a From header with the address of one verified sending domain",
    };
  }
  const d = f.fromDomain;
  if (!domainAllowed(f.grant, d)) {
    const who = f.submitter === "smtp-user" ? "user" : "key";
    return {
      allowed: false,
      reason: "outside-grant",
      domain: d,
      text: `sender domain ${d} is not allowed for this ${who}`,
    };
  }
  if (!f.verified) {
    return {
      allowed: false,
      reason: "unverified",
      domain: d,
      text: `sender domain ${d} is not a verified sending domain`,
    };
  }
  return ALLOWED;
}

/** Thrown by Ingress.submit when the sender policy refuses a message: nothing was stored. */
export class SenderRefused extends Error {
  constructor(readonly decision: Extract<SenderDecision, { allowed: false }>) {
    super(decision.text);
    this.name = "SenderRefused";
  }
}

export interface SenderPolicyDeps {
  readonly mode: SenderPolicyMode;
  /** DomainService.isVerified. */
  readonly isVerified: (domain: string) => Promise<boolean>;
}

/** The policy with its lookup: the database is asked only when the answer matters. */
export class SenderPolicy {
  constructor(private readonly deps: SenderPolicyDeps) {}

  async decide(
    input: { submitter: Submitter; grant?: readonly string[]; fromDomain: () => string | undefined },
  ): Promise<SenderDecision> {
    if (!policyApplies(this.deps.mode, input.submitter)) return ALLOWED;
    const fromDomain = input.fromDomain();
    const grant = input.grant ?? [];
    const lookUp = fromDomain !== undefined && domainAllowed(grant, fromDomain);
    const verified = lookUp ? await this.deps.isVerified(fromDomain) : false;
    return decideSender({ mode: this.deps.mode, submitter: input.submitter, fromDomain, grant, verified });
  }
}
