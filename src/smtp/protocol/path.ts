import { domainNameError, type Mailbox, MAX_PATH_OCTETS, parseMailbox } from "../../core/address.ts";

/**
 * Reverse-path / forward-path "<...>" at the start of the text (RFC 5321
 * 4.1.2), read with UTF-8 allowed (RFC 6531 3.3); `utf8` says whether the
 * path holds any, for the caller to refuse without SMTPUTF8. Returns the
 * text after ">" for the parameters.
 */
export type PathResult =
  | { ok: true; mailbox: Mailbox | null; rest: string; utf8: boolean }
  | { ok: false; error: string };

const encoder = new TextEncoder();

export function parsePath(text: string, options: { allowNull: boolean }): PathResult {
  if (!text.startsWith("<")) return { ok: false, error: `expected "<" to open the path in "${text}"` };
  let inQuotes = false;
  let end = -1;
  for (let i = 1; i < text.length; i++) {
    const ch = text[i];
    if (inQuotes && ch === "\\") i++;
    else if (ch === '"') inQuotes = !inQuotes;
    else if (ch === ">" && !inQuotes) {
      end = i;
      break;
    }
  }
  if (end < 0) return { ok: false, error: `unterminated path "${text}"` };
  let inner = text.slice(1, end);
  const rest = text.slice(end + 1);
  if (rest !== "" && !rest.startsWith(" ")) return { ok: false, error: `expected a space after the path in "${text}"` };
  const utf8 = /[^\x00-\x7f]/.test(inner);
  if (inner === "") {
    if (!options.allowNull) return { ok: false, error: "the null path <> is not allowed here" };
    return { ok: true, mailbox: null, rest, utf8 };
  }
  if (inner.startsWith("@")) {
    const route = sourceRouteEnd(inner);
    if (typeof route === "string") return { ok: false, error: `invalid source route in "<${inner}>": ${route}` };
    // RFC 5321 4.5.3.1.3: the limit counts the whole path, route and punctuation included.
    if (encoder.encode(inner).length + 2 > MAX_PATH_OCTETS) {
      return { ok: false, error: `path longer than ${MAX_PATH_OCTETS} octets` };
    }
    inner = inner.slice(route);
  }
  const parsed = parseMailbox(inner, { utf8: true });
  return parsed.ok ? { ok: true, mailbox: parsed.mailbox, rest, utf8 } : parsed;
}

/**
 * A-d-l ":" before the mailbox: A-d-l = At-domain *( "," At-domain ),
 * At-domain = "@" Domain (RFC 5321 4.1.2). A source route is accepted and
 * ignored (RFC 5321 4.1.1.3, C) only when it is well formed. Returns where
 * the mailbox starts, or what is wrong.
 */
function sourceRouteEnd(inner: string): number | string {
  const colon = inner.indexOf(":");
  if (colon < 0) return 'expected ":" after the route';
  for (const atDomain of inner.slice(0, colon).split(",")) {
    if (!atDomain.startsWith("@")) return `expected "@domain", got "${atDomain}"`;
    const error = domainNameError(atDomain.slice(1), true);
    if (error) return error;
  }
  return colon + 1;
}
