/**
 * The signature header fields we add (DKIM-Signature, RFC 6376 3.5;
 * ARC-Message-Signature and ARC-Seal, RFC 8617 4.1): tag=value pairs folded
 * at 78 columns between tags (and between the names of h=), b= last and on
 * lines of its own. What is hashed and signed is the field up to "b="
 * (RFC 6376 3.7), so the folding before b= is fixed before the signature is
 * known, and the value added after it is deleted again by any verifier.
 */
import { ByteSink, canonicalHeader, type Canonicalization } from "./dkim-canon.ts";

const LINE = 78;

export interface UnsignedField {
  /** The field up to and including "b=", folded, without a final CRLF. */
  readonly head: string;
  /** What is signed of it: `head` canonicalized, without a final CRLF. */
  readonly canonical: Uint8Array;
}

/** `tags` (without b=) as a folded field ending in "b=", and its canonical form. */
export function unsignedField(
  name: string,
  tags: readonly (readonly [string, string])[],
  canonicalization: Canonicalization = "relaxed",
): UnsignedField {
  // Words, each with what joins it to the one before when both stay on one line.
  const words: { text: string; glue: string }[] = [];
  for (const [tag, value] of tags) {
    if (tag === "h") {
      const names = value.split(":");
      names.forEach((n, i) =>
        words.push({
          text: `${i === 0 ? "h=" : ""}${n}${i === names.length - 1 ? ";" : ":"}`,
          glue: i === 0 ? " " : "",
        })
      );
    } else {
      words.push({ text: `${tag}=${value};`, glue: " " });
    }
  }
  const lines: string[] = [];
  let line = `${name}:`;
  for (const { text, glue } of words) {
    if (line.length + glue.length + text.length > LINE && line !== `${name}:`) {
      lines.push(line);
      line = ` ${text}`;
    } else {
      line += glue + text;
    }
  }
  lines.push(line, " b=");
  const head = lines.join("\r\n");
  const bytes = Buffer.from(head, "latin1");
  const out = new ByteSink(bytes.length);
  canonicalHeader(
    canonicalization,
    bytes,
    { name: name.toLowerCase(), start: 0, colon: name.length, end: bytes.length },
    out,
    true,
  );
  return { head, canonical: out.bytes() };
}

/** The whole field: `head` with the signature (base64) folded after its "b=". */
export function signedField(head: string, signature: string): string {
  const first = LINE - 4;
  const parts = [signature.slice(0, first)];
  for (let i = first; i < signature.length; i += LINE - 2) parts.push(signature.slice(i, i + LINE - 2));
  return head + parts.join("\r\n ");
}
