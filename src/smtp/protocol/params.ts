/**
 * ESMTP parameters after MAIL/RCPT paths (RFC 5321 4.1.2: esmtp-param =
 * esmtp-keyword ["=" esmtp-value]) and the ones this server knows:
 * SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531),
 * RET/ENVID/NOTIFY/ORCPT (DSN, RFC 3461), AUTH (RFC 4954 5),
 * REQUIRETLS (RFC 8689 2).
 */

export interface MailParams {
  size?: number;
  body?: "7BIT" | "8BITMIME";
  smtputf8?: boolean;
  ret?: "FULL" | "HDRS";
  /** Decoded from xtext. */
  envid?: string;
  /** RFC 8689 2: the message must be relayed only over TLS meeting REQUIRETLS; the session itself must be TLS. */
  requireTls?: boolean;
}

export interface RcptParams {
  /** "NEVER" alone, or any of "SUCCESS", "FAILURE", "DELAY". */
  notify?: string[];
  /** "addr-type;address", the address decoded from xtext (RFC 3461 4.2). */
  orcpt?: string;
}

export type ParamsResult<T> = { ok: true; params: T } | { ok: false; code: 501 | 555; error: string };
type Raw = Map<string, string | undefined>;

/** Split " KEY=VALUE KEY2" into keywords (upper-cased) and raw values. */
export function splitParams(text: string, utf8: boolean): ParamsResult<Raw> {
  const out: Raw = new Map();
  const trimmed = text.replace(/^ +/, "");
  if (trimmed === "") return { ok: true, params: out };
  for (const part of trimmed.split(/ +/)) {
    const eq = part.indexOf("=");
    const key = (eq < 0 ? part : part.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(key)) return bad(`invalid parameter "${part}"`);
    // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 with SMTPUTF8 (RFC 6531 3.3)
    if (value !== undefined && !(utf8 ? /^[^\x00-\x20=\x7f]+$/ : /^[\x21-\x3c\x3e-\x7e]+$/).test(value)) {
      return bad(`invalid value in parameter "${part}"`);
    }
    if (out.has(key)) return bad(`parameter ${key} given twice`);
    out.set(key, value);
  }
  return { ok: true, params: out };
}

const bad = <T>(error: string): ParamsResult<T> => ({ ok: false, code: 501, error });
const unknown = <T>(key: string): ParamsResult<T> => ({ ok: false, code: 555, error: `unsupported parameter ${key}` });

export function mailParams(raw: Raw): ParamsResult<MailParams> {
  const p: MailParams = {};
  for (const [key, value] of raw) {
    switch (key) {
      case "SIZE":
        if (value === undefined || !/^\d{1,20}$/.test(value)) return bad(`SIZE needs a number, got "${value ?? ""}"`);
        p.size = Number(value);
        break;
      case "BODY": {
        const body = value?.toUpperCase();
        if (body !== "7BIT" && body !== "8BITMIME") return unknown(`BODY=${value ?? ""}`);
        p.body = body;
        break;
      }
      case "SMTPUTF8":
        if (value !== undefined) return bad("SMTPUTF8 takes no value");
        p.smtputf8 = true;
        break;
      case "RET": {
        const ret = value?.toUpperCase();
        if (ret !== "FULL" && ret !== "HDRS") return bad(`RET must be FULL or HDRS, got "${value ?? ""}"`);
        p.ret = ret;
        break;
      }
      case "ENVID": {
        const envid = value === undefined ? undefined : decodeXtext(value);
        if (envid === undefined || value!.length > 100) return bad(`ENVID must be xtext of at most 100 characters`);
        p.envid = envid;
        break;
      }
      case "REQUIRETLS":
        // RFC 8689 2 item 4: no value is associated with this parameter.
        if (value !== undefined) return bad("REQUIRETLS takes no value");
        p.requireTls = true;
        break;
      case "AUTH":
        // RFC 4954 5: "<>" or an xtext identity; a server that does not trust it ignores it. So do we.
        if (value === undefined || (value !== "<>" && decodeXtext(value) === undefined)) {
          return bad("AUTH must be <> or xtext");
        }
        break;
      default:
        return unknown(key);
    }
  }
  return { ok: true, params: p };
}

export function rcptParams(raw: Raw): ParamsResult<RcptParams> {
  const p: RcptParams = {};
  for (const [key, value] of raw) {
    switch (key) {
      case "NOTIFY": {
        const list = (value ?? "").toUpperCase().split(",");
        const valid = list.every((v) => v === "SUCCESS" || v === "FAILURE" || v === "DELAY");
        if (!(list.length === 1 && list[0] === "NEVER") && !(valid && new Set(list).size === list.length)) {
          return bad(`NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY, got "${value ?? ""}"`);
        }
        p.notify = list;
        break;
      }
      case "ORCPT": {
        const semi = value?.indexOf(";") ?? -1;
        const address = semi > 0 ? decodeXtext(value!.slice(semi + 1)) : undefined;
        if (!address || !/^[A-Za-z0-9-]+$/.test(value!.slice(0, semi))) {
          return bad(`ORCPT must be addr-type;xtext, got "${value ?? ""}"`);
        }
        p.orcpt = `${value!.slice(0, semi)};${address}`;
        break;
      }
      default:
        return unknown(key);
    }
  }
  return { ok: true, params: p };
}

/** xtext (RFC 3461 4): "+XX" hex escapes; undefined when malformed. */
export function decodeXtext(text: string): string | undefined {
  if (/[^\x21-\x7e]|=/.test(text)) return undefined;
  let out = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== "+") {
      out += text[i];
      continue;
    }
    const hex = text.slice(i + 1, i + 3);
    if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
    out += String.fromCharCode(parseInt(hex, 16));
    i += 2;
  }
  return out;
}

export function encodeXtext(text: string): string {
  return text.replace(
    /[^\x21-\x2a\x2c-\x3c\x3e-\x7e]/g,
    (c) => `+${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`,
  );
}
