/**
 * Inbound checks on what the relay receives: SPF (RFC 7208) and DMARC
 * (RFC 7489) by mailauth; every DKIM signature (RFC 6376, RFC 8463) and the
 * ARC chain (RFC 8617) verified here on the message's octets; all with our
 * resolver, as values.
 */
import { checkSpf, evaluateDmarc } from "../mailauth.ts";
import addressparser from "nodemailer/lib/addressparser/index.js";
import type { Clock } from "../../core/clock.ts";
import { type MessageParts, splitMessage } from "../../core/header-section.ts";
import { verifyArc } from "./arc-verify.ts";
import { verifyDkim } from "./dkim-verify.ts";
import { type InboundResolver, type MailauthResolver, mailauthResolver } from "../mailauth-resolver.ts";
import {
  arcResinfo,
  type AuthResult,
  authResultsHeader,
  type DkimOutcome,
  dkimResinfo,
  type DmarcOutcome,
  type DmarcPolicy,
  dmarcResinfo,
  type InboundResults,
  type SpfOutcome,
  spfResinfo,
} from "./results.ts";
import { BodyHashes } from "./signature-verify.ts";

export interface InboundMessage {
  /** The message as received (header section and body, CRLF line ends). */
  readonly message: Uint8Array;
  readonly clientIp: string;
  /** The EHLO/HELO name, when the client gave one. */
  readonly heloName?: string;
  /** The reverse-path address; null or "" for the null reverse-path. */
  readonly mailFrom: string | null;
  /** Our host name: the authserv-id of the Authentication-Results field. */
  readonly hostname: string;
}

export interface InboundDeps {
  readonly resolver: InboundResolver;
  readonly clock: Clock;
  /** Shortest RSA key accepted for DKIM and ARC, bits; default 1024 (RFC 8301 3.2). */
  readonly minBitLength?: number;
}

export async function checkInbound(received: InboundMessage, deps: InboundDeps): Promise<InboundResults> {
  // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
  const input = { ...received, clientIp: received.clientIp.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "") };
  const resolver = mailauthResolver(deps.resolver);
  const verifying = { resolver, minBitLength: deps.minBitLength ?? 1024, now: deps.clock.now() };
  const mailFrom = input.mailFrom || "";
  const parts = splitMessage(input.message);
  const bodies = new BodyHashes(input.message, parts);

  const [spf, dkim] = await Promise.all([
    spfCheck(input, mailFrom, resolver),
    verifyDkim(input.message, parts, bodies, verifying),
  ]);
  const [dmarc, arc] = await Promise.all([
    dmarcCheck(fromAddresses(input.message, parts), spf, dkim, resolver),
    verifyArc(input.message, parts, bodies, verifying),
  ]);

  const authenticationResults = authResultsHeader(input.hostname, [
    spfResinfo(spf),
    ...dkim.map(dkimResinfo),
    dmarcResinfo(dmarc),
    arcResinfo(arc, input.clientIp),
  ]);
  return { spf, dkim, dmarc, arc, hostname: input.hostname, authenticationResults };
}

// --- SPF -------------------------------------------------------------------

const SPF_RESULTS: readonly AuthResult[] = ["pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"];

/** The MAIL FROM identity, or HELO for the null reverse-path (RFC 7208 2.4). */
async function spfCheck(input: InboundMessage, mailFrom: string, resolver: MailauthResolver): Promise<SpfOutcome> {
  const helo = input.heloName?.trim() || undefined;
  const identity = mailFrom ? "mailfrom" : "helo";
  // A HELO that is an address literal or no domain cannot be checked (RFC 7208 2.3).
  const heloIsName = helo !== undefined && !helo.startsWith("[") && /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\.?$/.test(helo);
  const sender = mailFrom || (heloIsName ? `postmaster@${helo!.replace(/\.$/, "")}` : "");
  const domain = (sender.slice(sender.lastIndexOf("@") + 1) || helo || "").toLowerCase();
  const base = { identity, domain, mailFrom, helo, clientIp: input.clientIp } as const;
  if (!sender) return { ...base, result: "none", comment: "no HELO domain to check" };

  const r = await checkSpf({ sender, ip: input.clientIp, helo, mta: input.hostname, resolver });
  const result = SPF_RESULTS.includes(r.status.result as AuthResult) ? (r.status.result as AuthResult) : "temperror";
  return { ...base, domain: r.domain, result, record: r.rr, comment: r.status.comment };
}

// --- DMARC -----------------------------------------------------------------

const utf8 = new TextDecoder("utf-8");

/** The addresses of the From field(s) (RFC5322.From), in order; groups are not addresses. */
function fromAddresses(message: Uint8Array, parts: MessageParts): string[] {
  const addresses: string[] = [];
  for (const field of parts.fields) {
    if (field.name !== "from") continue;
    for (const entry of addressparser(utf8.decode(message.subarray(field.colon + 1, field.end)).trim())) {
      if ("address" in entry && entry.address) addresses.push(entry.address);
    }
  }
  return addresses;
}

/** A tag=value list (RFC 6376 3.2). */
function tagList(value: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of value.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) tags.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return tags;
}

const POLICIES: readonly DmarcPolicy[] = ["none", "quarantine", "reject"];

/**
 * The record is found by mailauth (the From domain's, else its
 * organizational domain's, RFC 7489 6.6.3). Alignment is decided here:
 * mailauth hands `{ strict }` where its helper wants a boolean, so it never
 * applies adkim=s / aspf=s. Relaxed: the organizational domains match (RFC
 * 7489 3.1.1); strict: the domains are identical.
 */
async function dmarcCheck(
  headerFrom: readonly string[],
  spf: SpfOutcome,
  dkim: readonly DkimOutcome[],
  resolver: MailauthResolver,
): Promise<DmarcOutcome> {
  const fromDomains = [
    ...new Set(headerFrom.map((a) => a.slice(a.lastIndexOf("@") + 1).toLowerCase().replace(/\.$/, ""))),
  ];
  if (fromDomains.length === 0) return { result: "permerror", comment: "no From address" };
  // Several From addresses in one domain are evaluated as that domain (RFC 7489 6.6.1).
  if (fromDomains.length > 1) return { result: "permerror", comment: "From addresses in several domains" };
  const fromDomain = fromDomains[0]!;

  const spfDomains = spf.result === "pass" ? [spf.domain.toLowerCase()] : [];
  const dkimDomains = dkim.filter((d) => d.result === "pass" && d.domain).map((d) => d.domain!);
  const r = await evaluateDmarc({
    headerFrom: `postmaster@${fromDomain}`,
    spfDomains,
    dkimDomains: dkimDomains.map((domain) => ({ domain })),
    resolver,
  });
  if (!r) return { result: "permerror", fromDomain, comment: "unusable From address" };
  if (r.status.result === "temperror") return { result: "temperror", fromDomain, comment: r.error ?? "DNS failure" };
  if (r.status.result === "none" || !r.alignment) return { result: "none", fromDomain, comment: "no DMARC record" };

  const record = r.rr ?? "";
  const tags = tagList(record);
  const p = POLICIES.find((x) => x === r.p?.trim().toLowerCase());
  const sp = r.sp === undefined || r.sp === r.p ? undefined : POLICIES.find((x) => x === r.sp?.trim().toLowerCase());
  // RFC 7489 6.6.3 step 6: no valid p= is p=none when there is somewhere to report to, else no DMARC at all.
  if (p === undefined && !tags.get("rua")) {
    return { result: "none", fromDomain, record, comment: "DMARC record without a valid p=" };
  }
  const applied = POLICIES.find((x) => x === r.policy?.trim().toLowerCase()) ?? p ?? "none";

  // mailauth's alignment answer is the relaxed one (organizational domains equal); strict is an exact match.
  const spfStrict = r.alignment.spf.strict;
  const dkimStrict = r.alignment.dkim.strict;
  const spfAligned = spfStrict ? spfDomains.find((d) => d === fromDomain) : r.alignment.spf.result || undefined;
  const dkimAligned = dkimStrict ? dkimDomains.find((d) => d === fromDomain) : r.alignment.dkim.result || undefined;
  const result: AuthResult = spfAligned || dkimAligned ? "pass" : "fail";
  return {
    result,
    fromDomain,
    policy: applied,
    p: p ?? "none",
    sp,
    pct: typeof r.pct === "number" ? r.pct : undefined,
    record,
    disposition: result === "pass" ? "none" : applied,
    alignment: { spf: { strict: spfStrict, domain: spfAligned }, dkim: { strict: dkimStrict, domain: dkimAligned } },
  };
}
