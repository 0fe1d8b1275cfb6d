/**
 * A milter's modifications applied to the message they were asked for,
 * as Sendmail's and Postfix's cleanup apply them (smfi_* in libmilter's
 * documentation): fields added at the end of the header section or
 * inserted at an index from its top, the Nth field of a name changed or,
 * given an empty value, deleted (or added when there is no Nth), the
 * envelope sender changed, recipients added and deleted, the body
 * replaced. The result keeps the queue's form: every line ends in CRLF.
 */
import { splitMessage } from "../core/header-section.ts";
import type { MilterModification } from "./edits.ts";

export interface MilterEnvelope {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly content: Uint8Array;
}

const encoder = new TextEncoder();
const CRLF = encoder.encode("\r\n");

interface Field {
  /** Lower-cased; "" for a line without a colon. */
  readonly name: string;
  /** The field's octets with its CRLF. */
  readonly bytes: Uint8Array;
}

/** An envelope address as a milter writes it, "<a@b>" or "a@b", without the brackets. */
export function bareAddress(address: string): string {
  return address.startsWith("<") && address.endsWith(">") ? address.slice(1, -1) : address;
}

/** The same mailbox: local parts compare exactly, domains without case (RFC 5321 2.4). */
function sameMailbox(a: string, b: string): boolean {
  const at = (s: string) => s.lastIndexOf("@");
  return a.slice(0, at(a)) === b.slice(0, at(b)) && a.slice(at(a)).toLowerCase() === b.slice(at(b)).toLowerCase();
}

export function applyModifications(
  envelope: MilterEnvelope,
  modifications: readonly MilterModification[],
): MilterEnvelope {
  if (modifications.length === 0) return envelope;
  const { fields: parsed, bodyStart } = splitMessage(envelope.content);
  let fields: Field[] = parsed.map((field) => ({
    name: field.colon === field.end ? "" : field.name,
    bytes: concat([envelope.content.subarray(field.start, field.end), CRLF]),
  }));
  let body = envelope.content.subarray(bodyStart);
  let sender = envelope.sender;
  let recipients = [...envelope.recipients];
  const fieldOf = (name: string, value: string): Field => ({
    name: name.toLowerCase(),
    bytes: encoder.encode(`${name}:${value}\r\n`),
  });

  for (const edit of modifications) {
    switch (edit.kind) {
      case "add-header":
        fields.push(fieldOf(edit.name, edit.value));
        break;
      case "insert-header":
        fields.splice(Math.min(edit.index, fields.length), 0, fieldOf(edit.name, edit.value));
        break;
      case "change-header": {
        const name = edit.name.toLowerCase();
        let seen = 0;
        const at = fields.findIndex((field) => field.name === name && ++seen === edit.index);
        if (at < 0) {
          if (edit.value !== "") fields.push(fieldOf(edit.name, edit.value));
        } else if (edit.value === "") {
          fields = fields.filter((_, i) => i !== at);
        } else {
          fields[at] = fieldOf(edit.name, edit.value);
        }
        break;
      }
      case "change-sender":
        sender = bareAddress(edit.address);
        break;
      case "add-recipient": {
        const address = bareAddress(edit.address);
        if (!recipients.some((r) => sameMailbox(r, address))) recipients.push(address);
        break;
      }
      case "delete-recipient": {
        const address = bareAddress(edit.address);
        recipients = recipients.filter((r) => !sameMailbox(r, address));
        break;
      }
      case "replace-body":
        body = withCrlf(edit.body);
        break;
    }
  }
  return { sender, recipients, content: concat([...fields.map((field) => field.bytes), CRLF, body]) };
}

/** Bare LF (and a lone CR) as CRLF: the queue stores CRLF lines only. */
function withCrlf(body: Uint8Array): Uint8Array {
  const CR = 13;
  const LF = 10;
  const out: number[] = [];
  let changed = false;
  for (let i = 0; i < body.length; i++) {
    const octet = body[i]!;
    if (octet === CR && body[i + 1] === LF) {
      out.push(CR, LF);
      i++;
    } else if (octet === CR || octet === LF) {
      out.push(CR, LF);
      changed = true;
    } else {
      out.push(octet);
    }
  }
  return changed ? Uint8Array.from(out) : body;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
