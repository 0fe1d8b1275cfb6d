import { parseMailbox, type Mailbox } from "../../core/address.ts";

/**
 * Reverse-path / forward-path "<...>" at the start of the text (RFC 5321
 * 4.1.2). An A-d-l source route ("<@a,@b:user@c>") is accepted and ignored
 * (RFC 5321 4.1.1.3, C). Returns the text after ">" for the parameters.
 */
export type PathResult =
  | { ok: true; mailbox: Mailbox | null; rest: string }
  | { ok: false; error: string };

export function parsePath(text: string, options: { utf8: boolean; allowNull: boolean }): PathResult {
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
  if (inner === "") {
    if (!options.allowNull) return { ok: false, error: "the null path <> is not allowed here" };
    return { ok: true, mailbox: null, rest };
  }
  if (inner.startsWith("@")) {
    const colon = inner.indexOf(":");
    if (colon < 0) return { ok: false, error: `invalid source route in "<${inner}>"` };
    inner = inner.slice(colon + 1);
  }
  const parsed = parseMailbox(inner, { utf8: options.utf8 });
  return parsed.ok ? { ok: true, mailbox: parsed.mailbox, rest } : parsed;
}
