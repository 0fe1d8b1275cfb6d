import type { Reply } from "../../core/reply.ts";
import { has8BitBytes } from "./dot-stuff.ts";

/**
 * EHLO keywords (RFC 5321 4.1.1.1): the lines after the first, keyword upper-cased,
 * parameters kept as sent ("SIZE" -> "10485760", "PIPELINING" -> "").
 */
export function parseExtensions(ehlo: Reply): Map<string, string> {
  const extensions = new Map<string, string>();
  for (const line of ehlo.lines.slice(1)) {
    const match = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(line.trim());
    if (match) extensions.set(match[1]!.toUpperCase(), (match[2] ?? "").trim());
  }
  return extensions;
}

const nonAscii = (s: string): boolean => /[^\x00-\x7f]/.test(s);

/**
 * MAIL FROM parameters the client adds on its own: SIZE=n (RFC 1870), BODY=8BITMIME
 * (RFC 6152) for 8-bit content, SMTPUTF8 (RFC 6531) for non-ASCII addresses, each only
 * when advertised and not already given by the caller.
 */
export function mailParameters(
  extensions: ReadonlyMap<string, string>,
  message: Uint8Array,
  addresses: readonly string[],
  given: readonly string[] = [],
): string[] {
  const keys = new Set(given.map((p) => p.split("=")[0]!.toUpperCase()));
  const params = [...given];
  const add = (key: string, value?: string) => {
    if (!keys.has(key)) params.push(value === undefined ? key : `${key}=${value}`);
  };
  if (extensions.has("SIZE")) add("SIZE", String(message.length));
  if (extensions.has("8BITMIME") && has8BitBytes(message)) add("BODY", "8BITMIME");
  if (extensions.has("SMTPUTF8") && addresses.some(nonAscii)) add("SMTPUTF8");
  return params;
}

/** RFC 3461 parameters of one transaction: RET/ENVID on MAIL, NOTIFY/ORCPT per RCPT (parallel to the recipients). */
export interface DsnParameters {
  readonly ret?: "FULL" | "HDRS";
  /** The envelope id as text; xtext-encoded here. */
  readonly envid?: string;
  readonly recipients?: readonly (DsnRecipientParameters | undefined)[];
}

export interface DsnRecipientParameters {
  /** "NEVER" or a comma list of SUCCESS, FAILURE, DELAY. */
  readonly notify?: string | readonly string[];
  /** "addr-type;address", the address as text (not xtext). */
  readonly orcpt?: string;
}

/**
 * xtext (RFC 3461 4): printable US-ASCII except "+" and "=" as itself, every
 * other octet of the UTF-8 encoding as "+" and two upper-case hex digits.
 */
export function encodeXtext(text: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    out += byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d
      ? String.fromCharCode(byte)
      : `+${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * ORCPT=addr-type;xtext (RFC 3461 4.2). A non-ASCII "rfc822" address is
 * sent as RFC 6533 "utf-8" type in its 7-bit form (\x{HEX} escapes), which
 * any DSN-capable server can carry.
 */
export function orcptParameter(orcpt: string): string | undefined {
  const semi = orcpt.indexOf(";");
  let type = semi > 0 ? orcpt.slice(0, semi).trim() : "rfc822";
  let address = (semi > 0 ? orcpt.slice(semi + 1) : orcpt).trim();
  if (address === "" || !/^[A-Za-z0-9-]+$/.test(type)) return undefined;
  if (nonAscii(address) && type.toLowerCase() === "rfc822") {
    type = "utf-8";
    address = [...address]
      .map((ch) => {
        const cp = ch.codePointAt(0)!;
        return cp > 0x7e || cp < 0x21 || ch === "+" || ch === "=" || ch === "\\"
          ? `\\x{${cp.toString(16).toUpperCase()}}`
          : ch;
      })
      .join("");
  }
  return `ORCPT=${type};${encodeXtext(address)}`;
}

const NOTIFY = /^(NEVER|((SUCCESS|FAILURE|DELAY)(,(SUCCESS|FAILURE|DELAY))*))$/;

/** NOTIFY= and ORCPT= for one RCPT; malformed values are left out rather than sent. */
export function dsnRecipientParameters(p: DsnRecipientParameters | undefined): string[] {
  if (!p) return [];
  const out: string[] = [];
  const notify = (typeof p.notify === "string" ? p.notify : p.notify?.join(","))?.toUpperCase().replace(/\s+/g, "");
  if (notify && NOTIFY.test(notify)) out.push(`NOTIFY=${notify}`);
  const orcpt = p.orcpt === undefined ? undefined : orcptParameter(p.orcpt);
  if (orcpt) out.push(orcpt);
  return out;
}

/** RET= and ENVID= for MAIL (RFC 3461 4.3, 4.4); ENVID is at most 100 characters of xtext. */
export function dsnMailParameters(p: DsnParameters | undefined): string[] {
  if (!p) return [];
  const out: string[] = [];
  if (p.ret === "FULL" || p.ret === "HDRS") out.push(`RET=${p.ret}`);
  if (p.envid !== undefined && p.envid !== "") {
    const envid = encodeXtext(p.envid);
    if (envid.length <= 100) out.push(`ENVID=${envid}`);
  }
  return out;
}
