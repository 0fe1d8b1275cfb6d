/**
 * Inbound checks on what the relay receives: SPF (RFC 7208), every DKIM
 * signature (RFC 6376, RFC 8463), DMARC (RFC 7489) and the ARC chain
 * (RFC 8617), all by mailauth with our resolver, as values.
 */
import { Buffer } from "node:buffer";
import { arc as verifyArc } from "mailauth/lib/arc/index.js";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { dmarc as dmarcRecordCheck } from "mailauth/lib/dmarc/index.js";
import { spf as checkSpf } from "mailauth/lib/spf/index.js";
import type { Clock } from "../../core/clock.ts";
import { fieldValues } from "./headers.ts";
import { mailauthResolver, type InboundResolver, type MailauthResolver } from "./mailauth-resolver.ts";
import {
  arcResinfo,
  authResultsHeader,
  dkimResinfo,
  dmarcResinfo,
  spfResinfo,
  type ArcOutcome,
  type AuthResult,
  type DkimOutcome,
  type DmarcOutcome,
  type DmarcPolicy,
  type InboundResults,
  type SpfOutcome,
} from "./results.ts";

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
  const minBitLength = deps.minBitLength ?? 1024;
  const bytes = Buffer.from(input.message.buffer, input.message.byteOffset, input.message.byteLength);
  const mailFrom = input.mailFrom || "";

  const [spf, verified] = await Promise.all([
    spfCheck(input, mailFrom, resolver),
    dkimVerify(bytes, {
      resolver,
      // mailauth reads the Return-Path header without this; the envelope is what counts.
      sender: mailFrom || undefined,
      minBitLength,
      curTime: new Date(deps.clock.now()),
    }),
  ]);
  const dkim = dkimOutcomes(verified.results as unknown as MailauthDkim[], fieldValues(input.message, "DKIM-Signature"));
  const [dmarc, arc] = await Promise.all([
    dmarcCheck(verified.headerFrom, spf, dkim, resolver),
    arcCheck((verified as { arc?: unknown }).arc, resolver, minBitLength),
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

  const r = (await checkSpf({ sender, ip: input.clientIp, helo, mta: input.hostname, resolver })) as unknown as {
    domain: string;
    rr?: string;
    status: { result: string; comment?: string };
  };
  const result = SPF_RESULTS.includes(r.status.result as AuthResult) ? (r.status.result as AuthResult) : "temperror";
  return { ...base, domain: r.domain, result, record: r.rr, comment: r.status.comment };
}

// --- DKIM ------------------------------------------------------------------

interface MailauthDkim {
  signingDomain?: string;
  selector?: string;
  signature?: string;
  algo?: string;
  status: { result: string; comment?: string };
}

/**
 * mailauth's DKIM outcomes in RFC 8601 2.7.1 terms. It calls a body that
 * does not match its hash "neutral"; RFC 6376 6.1.3 makes that a failed
 * verification (fail). A missing or unusable key is a permanent error
 * (RFC 6376 6.1.2). Signatures mailauth skips as unusable (unknown
 * algorithm or canonicalization, no d= or s=) come back as permerror
 * rather than vanishing.
 */
function dkimOutcomes(results: readonly MailauthDkim[], signatureFields: readonly string[]): DkimOutcome[] {
  const out: DkimOutcome[] = [];
  const seen = new Set<string>();
  for (const r of results) {
    if (r.signingDomain === undefined) continue; // mailauth's "message not signed" placeholder
    if (r.signature) seen.add(r.signature.replace(/\s+/g, ""));
    out.push({
      result: dkimResult(r.status),
      domain: r.signingDomain.toLowerCase(),
      selector: r.selector,
      algorithm: r.algo,
      b: r.signature?.replace(/\s+/g, "").slice(0, 8) || undefined,
      comment: r.status.comment ?? (r.status.result === "policy" ? "key shorter than allowed" : undefined),
    });
  }
  for (const field of signatureFields) {
    const tags = tagList(field);
    const b = (tags.get("b") ?? "").replace(/\s+/g, "");
    if (b && seen.has(b)) continue;
    out.push({
      result: "permerror",
      domain: tags.get("d")?.toLowerCase(),
      selector: tags.get("s"),
      algorithm: tags.get("a"),
      b: b.slice(0, 8) || undefined,
      comment: "signature could not be processed",
    });
  }
  return out.length > 0 ? out : [{ result: "none", comment: "message not signed" }];
}

function dkimResult(status: { result: string; comment?: string }): AuthResult {
  switch (status.result) {
    case "pass":
    case "fail":
    case "policy":
    case "temperror":
    case "permerror":
      return status.result;
    case "neutral":
      if (status.comment === "body hash did not verify") return "fail";
      if (/^(no key|unknown key version|unknown key type|invalid public key)$/.test(status.comment ?? "")) return "permerror";
      return "neutral";
    default:
      return "neutral";
  }
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

// --- DMARC -----------------------------------------------------------------

const POLICIES: readonly DmarcPolicy[] = ["none", "quarantine", "reject"];

interface MailauthDmarc {
  domain: string;
  policy?: string;
  p?: string;
  sp?: string;
  pct?: number;
  rr?: string;
  error?: string;
  status: { result: string; comment?: string };
  alignment?: { spf: { strict: boolean; result?: string | false }; dkim: { strict: boolean; result?: string | false } };
}

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
  const fromDomains = [...new Set(headerFrom.map((a) => a.slice(a.lastIndexOf("@") + 1).toLowerCase().replace(/\.$/, "")))];
  if (fromDomains.length === 0) return { result: "permerror", comment: "no From address" };
  // Several From addresses in one domain are evaluated as that domain (RFC 7489 6.6.1).
  if (fromDomains.length > 1) return { result: "permerror", comment: "From addresses in several domains" };
  const fromDomain = fromDomains[0]!;

  const spfDomains = spf.result === "pass" ? [spf.domain.toLowerCase()] : [];
  const dkimDomains = dkim.filter((d) => d.result === "pass" && d.domain).map((d) => d.domain!);
  const r = (await dmarcRecordCheck({
    headerFrom: `postmaster@${fromDomain}`,
    spfDomains,
    dkimDomains: dkimDomains.map((domain) => ({ domain })),
    resolver,
  })) as unknown as MailauthDmarc | false;
  if (!r) return { result: "permerror", fromDomain, comment: "unusable From address" };
  if (r.status.result === "temperror") return { result: "temperror", fromDomain, comment: r.error ?? "DNS failure" };
  if (r.status.result === "none" || !r.alignment) return { result: "none", fromDomain, comment: "no DMARC record" };

  const record = r.rr ?? "";
  const tags = tagList(record);
  const p = POLICIES.find((x) => x === r.p?.trim().toLowerCase());
  const sp = r.sp === undefined || r.sp === r.p ? undefined : POLICIES.find((x) => x === r.sp?.trim().toLowerCase());
  // RFC 7489 6.6.3 step 6: no valid p= is p=none when there is somewhere to report to, else no DMARC at all.
  if (p === undefined && !tags.get("rua")) return { result: "none", fromDomain, record, comment: "DMARC record without a valid p=" };
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

// --- ARC -------------------------------------------------------------------

interface MailauthArc {
  i?: number | false;
  status: { result: string; comment?: string; shouldSeal?: boolean };
}

async function arcCheck(data: unknown, resolver: MailauthResolver, minBitLength: number): Promise<ArcOutcome> {
  const chain = (data ?? { chain: false }) as { chain: unknown; lastEntry?: { i?: number; "arc-seal"?: { parsed?: { cv?: { value?: string } } } } };
  const r = (await verifyArc(chain as never, { resolver, minBitLength })) as unknown as MailauthArc;
  const result: AuthResult = r.status.result === "pass" ? "pass" : r.status.result === "none" ? "none" : "fail";
  const instance = typeof r.i === "number" ? r.i : Number(chain.lastEntry?.i ?? 0);
  // A chain whose last seal already says cv=fail stays as it is (RFC 8617 5.1.2); a broken sequence is not sealed over.
  const lastCv = chain.lastEntry?.["arc-seal"]?.parsed?.cv?.value?.toLowerCase();
  const sealable = result !== "fail" || (r.status.shouldSeal === true && lastCv !== "fail");
  const comment = result === "pass" ? undefined : r.status.comment;
  return { result, instance, sealable, comment };
}
