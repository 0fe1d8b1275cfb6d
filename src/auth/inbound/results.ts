/**
 * Inbound authentication results as values, and their Authentication-Results
 * header field (RFC 8601).
 */

/** Result values of RFC 8601 2.7 (SPF: RFC 7208 2.6; DKIM: RFC 8601 2.7.1; DMARC: RFC 7489 11.2; ARC: RFC 8617 10.1). */
export type AuthResult = "pass" | "fail" | "softfail" | "neutral" | "none" | "permerror" | "temperror" | "policy";

export interface SpfOutcome {
  readonly result: AuthResult;
  /** "mailfrom" for the MAIL FROM identity; "helo" when the reverse-path was null (RFC 7208 2.4). */
  readonly identity: "mailfrom" | "helo";
  /** The checked domain: the MAIL FROM domain, or the HELO name. */
  readonly domain: string;
  readonly mailFrom: string;
  readonly helo?: string;
  readonly clientIp: string;
  /** The SPF record evaluated, when there was one. */
  readonly record?: string;
  readonly comment?: string;
}

export interface DkimOutcome {
  readonly result: AuthResult;
  /** d=, s=, a= of the signature; absent for "none" (no signature). */
  readonly domain?: string;
  readonly selector?: string;
  readonly algorithm?: string;
  /** The first 8 characters of b= (header.b, RFC 6008), telling signatures of one domain apart. */
  readonly b?: string;
  readonly comment?: string;
}

export type DmarcPolicy = "none" | "quarantine" | "reject";

export interface DmarcOutcome {
  readonly result: AuthResult;
  /** The RFC5322.From domain (header.from). */
  readonly fromDomain?: string;
  /** The policy that applies to this From domain: sp= for a subdomain covered by its organizational domain's record, p= otherwise. */
  readonly policy?: DmarcPolicy;
  readonly p?: string;
  readonly sp?: string;
  readonly pct?: number;
  readonly record?: string;
  /** What policy asks for this message: the policy on fail, "none" on pass. */
  readonly disposition?: DmarcPolicy;
  readonly alignment?: {
    readonly spf: { readonly strict: boolean; readonly domain?: string };
    readonly dkim: { readonly strict: boolean; readonly domain?: string };
  };
  readonly comment?: string;
}

export interface ArcOutcome {
  /** none (no chain), pass or fail (RFC 8617 4.4). */
  readonly result: AuthResult;
  /** The last instance in the chain; 0 without one. */
  readonly instance: number;
  /** Whether a sealer may add a set on top (RFC 8617 5.1: not over a chain that already says cv=fail). */
  readonly sealable: boolean;
  readonly comment?: string;
}

export interface InboundResults {
  readonly spf: SpfOutcome;
  readonly dkim: readonly DkimOutcome[];
  readonly dmarc: DmarcOutcome;
  readonly arc: ArcOutcome;
  /** The authserv-id (our hostname). */
  readonly hostname: string;
  /** The complete header field, folded, without the final CRLF: "Authentication-Results: host;\r\n\tspf=pass ...". */
  readonly authenticationResults: string;
}

/** The results for an event's data: plain JSON, no header text. */
export function resultsRecord(r: InboundResults): Record<string, unknown> {
  return { spf: r.spf, dkim: r.dkim, dmarc: r.dmarc, arc: r.arc };
}

/** A method's resinfo: "spf=pass (comment) smtp.mailfrom=a@b.example". */
function resinfo(
  method: string,
  result: string,
  comment: string | undefined,
  props: readonly [string, string | undefined][],
): string {
  const parts = [`${method}=${result}`];
  if (comment) parts.push(`(${escapeComment(comment)})`);
  for (const [name, value] of props) if (value) parts.push(`${name}=${pvalue(value)}`);
  return parts.join(" ");
}

export function spfResinfo(spf: SpfOutcome): string {
  const props: [string, string | undefined][] = spf.identity === "helo"
    ? [["smtp.helo", spf.helo]]
    : [["smtp.mailfrom", spf.mailFrom]];
  return resinfo("spf", spf.result, spf.comment, props);
}

export function dkimResinfo(d: DkimOutcome): string {
  return resinfo("dkim", d.result, d.comment, [
    ["header.d", d.domain],
    ["header.s", d.selector],
    ["header.a", d.algorithm],
    ["header.b", d.b],
  ]);
}

export function dmarcResinfo(d: DmarcOutcome): string {
  const comment = d.policy !== undefined
    ? [
      `p=${(d.p ?? d.policy).toUpperCase()}`,
      d.sp ? `sp=${d.sp.toUpperCase()}` : "",
      `dis=${(d.disposition ?? "none").toUpperCase()}`,
    ]
      .filter(Boolean)
      .join(" ")
    : d.comment;
  return resinfo("dmarc", d.result, comment, [["header.from", d.fromDomain]]);
}

export function arcResinfo(a: ArcOutcome, clientIp: string): string {
  const comment = a.result === "none" ? undefined : [`i=${a.instance}`, a.comment].filter(Boolean).join(" ");
  return resinfo("arc", a.result, comment, [["smtp.remote-ip", clientIp]]);
}

/**
 * The header field value after "Authentication-Results:" (RFC 8601 2.2):
 * authserv-id, then one resinfo per method and signature, ";"-separated,
 * folded one resinfo a line.
 */
export function authResultsValue(hostname: string, parts: readonly string[]): string {
  return [hostname, ...parts].join(";\r\n\t");
}

export function authResultsHeader(hostname: string, parts: readonly string[]): string {
  return `Authentication-Results: ${authResultsValue(hostname, parts)}`;
}

/** ptext inside a comment (RFC 5322 3.2.2): no CR/LF, parentheses and backslashes escaped. */
function escapeComment(text: string): string {
  return text.replace(/[\r\n\t]+/g, " ").replace(/[\\()]/g, (c) => `\\${c}`).slice(0, 200);
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const ADDRESS = /^[!#$%&'*+\-/=?^_`{|}~0-9A-Za-z.]*@[0-9A-Za-z.\-]+$/;

/** pvalue (RFC 8601 2.2): a token, a [local-part] "@" domain, or else a quoted-string. */
function pvalue(value: string): string {
  if (TOKEN.test(value) || ADDRESS.test(value)) return value;
  return `"${value.replace(/[\r\n]+/g, " ").replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
