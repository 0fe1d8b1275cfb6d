/**
 * RFC 5321 mailboxes (section 4.1.2), shared by SMTP and HTTP ingress.
 * Non-ASCII is allowed only with SMTPUTF8 (RFC 6531 3.3: UTF8-non-ascii in
 * atext, qtext and U-labels). Lengths are counted in octets (RFC 5321 4.5.3.1).
 */
import { domainToASCII } from "node:url";
import { formatIp, ipToBigInt } from "./cidr.ts";

export interface Mailbox {
  /** The local part, decoded: no surrounding quotes, no backslash escapes. */
  readonly local: string;
  /** The domain, lower-cased, or an address literal such as "[192.0.2.1]". */
  readonly domain: string;
}

export type MailboxResult = { ok: true; mailbox: Mailbox } | { ok: false; error: string };

export interface MailboxOptions {
  /** Allow non-ASCII characters (the transaction used SMTPUTF8, RFC 6531). */
  readonly utf8?: boolean;
}

export const MAX_LOCAL_OCTETS = 64;
export const MAX_DOMAIN_OCTETS = 255;
/** A path is "<" mailbox ">" (RFC 5321 4.5.3.1.3). */
export const MAX_PATH_OCTETS = 256;

const encoder = new TextEncoder();
const ASCII = /^[\x00-\x7f]*$/;
const octets = (s: string): number => (ASCII.test(s) ? s.length : encoder.encode(s).length);

/**
 * Character classes of RFC 5321 4.1.2, tested on UTF-16 code units: with
 * SMTPUTF8 every unit from 0x80 up is allowed, and so every code point
 * above 0x7f (RFC 6531 3.3). A lone half of a surrogate pair passes these
 * classes; parseMailbox refuses it beforehand.
 */
const ATEXT = String.raw`A-Za-z0-9!#$%&'*+\-/=?^_\`{|}~`;
const NON_ASCII = String.raw`\x80-\uffff`;
const DOT_STRING = new RegExp(String.raw`^[${ATEXT}]+(?:\.[${ATEXT}]+)*$`);
const DOT_STRING_UTF8 = new RegExp(String.raw`^[${ATEXT}${NON_ASCII}]+(?:\.[${ATEXT}${NON_ASCII}]+)*$`);
const LONE_SURROGATE = /\p{Cs}/u;
const C1_CONTROL = /[\x80-\x9f]/;
/** A label's characters: letters, digits, hyphens (where hyphens may stand is checked apart). */
const LDH = /^[A-Za-z0-9-]+$/;
const LDH_UTF8 = new RegExp(String.raw`^[A-Za-z0-9${NON_ASCII}-]+$`);

/** Dot-string = Atom *("." Atom) (RFC 5321 4.1.2). */
export function isDotString(s: string, utf8 = false): boolean {
  return (utf8 ? DOT_STRING_UTF8 : DOT_STRING).test(s);
}

/** Parse "local@domain" (no angle brackets). */
export function parseMailbox(text: string, options: MailboxOptions = {}): MailboxResult {
  const utf8 = options.utf8 ?? false;
  const fail = (why: string): MailboxResult => ({ ok: false, error: `invalid mailbox "${text}": ${why}` });
  if (!utf8 && /[^\x00-\x7f]/.test(text)) return fail("non-ASCII characters require SMTPUTF8");
  // Text from JSON may hold half a surrogate pair: no UTF-8 encodes it (RFC 3629 3).
  if (LONE_SURROGATE.test(text)) return fail("invalid UTF-8: an unpaired surrogate");
  // UTF8-non-ascii (RFC 6531 3.3) would let C1 controls in; U+0085 (NEL) ends a line to some readers.
  const c1 = C1_CONTROL.exec(text);
  if (c1) return fail(`control character U+${c1[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`);
  let local: string;
  let rest: string;
  if (text.startsWith('"')) {
    const quoted = parseQuoted(text, utf8);
    if (typeof quoted === "string") return fail(quoted);
    local = quoted.value;
    rest = text.slice(quoted.end);
    if (!rest.startsWith("@")) return fail('expected "@" after the quoted local part');
  } else {
    const at = text.lastIndexOf("@");
    if (at < 0) return fail('missing "@"');
    local = text.slice(0, at);
    rest = text.slice(at);
    if (local === "") return fail("empty local part");
    if (!isDotString(local, utf8)) return fail(`local part "${local}" is not a dot-atom; quote it`);
  }
  const wireLocal = text.length - rest.length;
  const domainText = rest.slice(1);
  if (octets(text.slice(0, wireLocal)) > MAX_LOCAL_OCTETS) {
    return fail(`local part longer than ${MAX_LOCAL_OCTETS} octets`);
  }
  if (octets(domainText) > MAX_DOMAIN_OCTETS) return fail(`domain longer than ${MAX_DOMAIN_OCTETS} octets`);
  if (octets(text) + 2 > MAX_PATH_OCTETS) return fail(`path longer than ${MAX_PATH_OCTETS} octets`);
  const domainError = checkDomain(domainText, utf8);
  if (domainError) return fail(domainError);
  return { ok: true, mailbox: { local, domain: domainText.toLowerCase() } };
}

/** Quoted-string with qtextSMTP and quoted-pairSMTP (RFC 5321 4.1.2). */
function parseQuoted(text: string, utf8: boolean): { value: string; end: number } | string {
  let value = "";
  const chars = [...text];
  let i = 1;
  let end = 1; // in UTF-16 units
  for (; i < chars.length; i++) {
    const ch = chars[i]!;
    end += ch.length;
    if (ch === '"') return { value, end };
    const code = ch.codePointAt(0)!;
    if (ch === "\\") {
      const next = chars[++i];
      if (next === undefined) break;
      end += next.length;
      if (next.codePointAt(0)! < 32 || next.codePointAt(0)! > 126) return "invalid quoted-pair";
      value += next;
    } else if ((code >= 32 && code <= 126) || (utf8 && code > 0x7f)) {
      value += ch;
    } else {
      return `invalid character U+${code.toString(16).padStart(4, "0")} in quoted local part`;
    }
  }
  return "unterminated quoted local part";
}

function checkDomain(domain: string, utf8: boolean): string | undefined {
  if (domain === "") return "empty domain";
  if (domain.startsWith("[")) return checkAddressLiteral(domain);
  return domainNameError(domain, utf8);
}

/**
 * address-literal (RFC 5321 4.1.3): IPv4, "IPv6:" and general literals. A
 * general literal's tag must be standardized and registered with IANA, and
 * none is besides IPv6: there is no way to deliver to one.
 */
function checkAddressLiteral(domain: string): string | undefined {
  if (!domain.endsWith("]")) return `unterminated address literal "${domain}"`;
  const inner = domain.slice(1, -1);
  if (isIPv4(inner)) return undefined;
  if (/^IPv6:/i.test(inner)) return isIPv6(inner.slice(5)) ? undefined : `invalid address literal "${domain}"`;
  // General-address-literal = Standardized-tag ":" 1*dcontent; dcontent = %d33-90 / %d94-126.
  const general = /^([A-Za-z0-9-]*[A-Za-z0-9]):[\x21-\x5a\x5e-\x7e]+$/.exec(inner);
  if (general) return `address literal tag "${general[1]}" is not supported; only IPv4 and IPv6 literals are`;
  return `invalid address literal "${domain}"`;
}

/**
 * Domain = sub-domain *("." sub-domain) (RFC 5321 4.1.2), with U-labels
 * under SMTPUTF8 (RFC 6531 3.3); no address literal. Undefined when valid.
 */
export function domainNameError(domain: string, utf8 = false): string | undefined {
  if (domain === "") return "empty domain";
  const labels = domain.split(".");
  for (const label of labels) {
    if (label === "") return `empty label in domain "${domain}"`;
    if (octets(label) > 63) return `label "${label}" longer than 63 octets`;
    // sub-domain = Let-dig [Ldh-str] (RFC 5321 4.1.2); U-labels with SMTPUTF8 (RFC 6531).
    if (!(utf8 ? LDH_UTF8 : LDH).test(label) || label.startsWith("-") || label.endsWith("-")) {
      return `invalid domain label "${label}"`;
    }
    if (!ASCII.test(label) && !isULabel(label)) {
      return `invalid domain label "${label}": not an internationalized label (RFC 5890)`;
    }
  }
  // No top-level domain is all digits (RFC 3696 2); a bare "192.0.2.1" is an address without its brackets.
  if (isIPv4(domain)) return `"${domain}" is an address; write it as an address literal, [${domain}]`;
  if (/^\d+$/.test(labels.at(-1)!)) {
    return `domain "${domain}" ends in an all-numeric label; no top-level domain is all digits`;
  }
  return undefined;
}

/**
 * A U-label (RFC 6531 3.3 refers to RFC 5890 2.3.2.1) is one whose A-label
 * exists: domainToASCII (UTS 46 mapping) must give one "xn--" label of at
 * most 63 octets, not "" (invalid), ASCII (the other characters were
 * ignorable, such as U+200B) or several labels (U+3002 maps to a dot).
 */
function isULabel(label: string): boolean {
  const aLabel = domainToASCII(label);
  return /^xn--[a-z0-9-]+$/.test(aLabel) && aLabel.length <= 63;
}

export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/** IPv6-addr (RFC 5321 4.1.3): full, compressed ("::"), optionally ending in IPv4. */
export function isIPv6(s: string): boolean {
  let body = s;
  let needed = 8;
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    if (!isIPv4(v4[2]!)) return false;
    body = v4[1]!.endsWith("::") ? v4[1]! : v4[1]!.slice(0, -1);
    needed = 6;
  }
  const hex = /^[0-9A-Fa-f]{1,4}$/;
  const groups = (x: string): string[] => (x === "" ? [] : x.split(":"));
  const halves = body.split("::");
  if (halves.length > 2) return false;
  if (halves.length === 1) {
    const g = groups(body);
    return g.length === needed && g.every((x) => hex.test(x));
  }
  // "::" stands for at least 2 groups of zeros (RFC 5321 4.1.3, IPv6-comp and IPv6v4-comp).
  const all = [...groups(halves[0]!), ...groups(halves[1]!)];
  return all.length <= needed - 2 && all.every((x) => hex.test(x));
}

/**
 * The address an address literal names ("[192.0.2.1]", "[IPv6:2001:db8::1]"),
 * in one canonical text (formatIp): "[127.000.0.1]" and "[IPv6:::ffff:127.0.0.1]"
 * both name 127.0.0.1. Undefined for a domain name or a malformed literal.
 */
export function literalAddress(domain: string): string | undefined {
  if (!domain.startsWith("[") || !domain.endsWith("]")) return undefined;
  const inner = domain.slice(1, -1);
  let text: string;
  if (isIPv4(inner)) text = withoutLeadingZeros(inner);
  else if (/^IPv6:/i.test(inner) && isIPv6(inner.slice(5))) {
    text = inner.slice(5).replace(/[\d.]+$/, (tail) => (tail.includes(".") ? withoutLeadingZeros(tail) : tail));
  } else return undefined;
  const value = ipToBigInt(text);
  return value === undefined ? undefined : formatIp(value);
}

/** A domain as routes name it: lower case; an address literal in canonical form, "[192.0.2.1]" or "[ipv6:2001:db8::1]". */
export function canonicalDomain(domain: string): string {
  const address = literalAddress(domain);
  if (address === undefined) return domain.toLowerCase();
  return address.includes(":") ? `[ipv6:${address}]` : `[${address}]`;
}

/** Snum = 1*3DIGIT (RFC 5321 4.1.3) may have leading zeros; "127.000.0.1" is 127.0.0.1, not octal. */
const withoutLeadingZeros = (dotted: string): string => dotted.split(".").map(Number).join(".");

/** Render a mailbox for the wire: quote the local part only when it is not a dot-string. */
export function formatMailbox(m: Mailbox): string {
  const local = isDotString(m.local, true) ? m.local : `"${m.local.replace(/(["\\])/g, "\\$1")}"`;
  return `${local}@${m.domain}`;
}

/** "<local@domain>", or "<>" for the null reverse-path. */
export function formatPath(m: Mailbox | null): string {
  return m ? `<${formatMailbox(m)}>` : "<>";
}

/** The domain of an address (what follows its last "@") as DNS knows it (asciiDomain): routes, MX, MTA-STS and DKIM use it. */
export function domainOf(address: string): string {
  return asciiDomain(address.slice(address.lastIndexOf("@") + 1));
}

/**
 * A domain as DNS and DKIM compare it: lower case, no trailing dot, each
 * U-label as its A-label (RFC 5890 2.3.2.1, by UTS 46 mapping); "" when it
 * has no A-label form.
 */
export function asciiDomain(raw: string): string {
  const text = raw.trim().toLowerCase().replace(/\.$/, "");
  return ASCII.test(text) ? text : domainToASCII(text);
}
