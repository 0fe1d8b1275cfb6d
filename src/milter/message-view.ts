/**
 * A message as the milter protocol shows it: each header field as name and
 * value, then the body. Sendmail's form (milter8.c milter8_header): the
 * value without the one space after the colon (unless SMFIP_HDR_LEADSPC),
 * its lines joined by a bare LF; the body as it is, CRLF line ends.
 */
import { splitMessage } from "../core/header-section.ts";

export interface MilterHeader {
  readonly name: Uint8Array;
  readonly value: Uint8Array;
}

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;

export function milterView(message: Uint8Array, leadingSpace: boolean): { headers: MilterHeader[]; body: Uint8Array } {
  const { fields, bodyStart } = splitMessage(message);
  const headers: MilterHeader[] = [];
  for (const field of fields) {
    if (field.colon === field.end) continue; // a line without a colon is no field to show
    let nameEnd = field.colon;
    while (nameEnd > field.start && (message[nameEnd - 1] === SP || message[nameEnd - 1] === HTAB)) nameEnd--;
    let valueStart = field.colon + 1;
    if (!leadingSpace && message[valueStart] === SP) valueStart++;
    headers.push({
      name: withoutNul(message.subarray(field.start, nameEnd)),
      value: withoutNul(message.subarray(valueStart, field.end)).filter((octet, i, value) =>
        !(octet === CR && value[i + 1] === LF)
      ),
    });
  }
  return { headers, body: message.subarray(bodyStart) };
}

/** NUL would end the field on the wire; the milter only reads this copy, so the octet is left out of it. */
function withoutNul(bytes: Uint8Array): Uint8Array {
  return bytes.includes(0) ? bytes.filter((octet) => octet !== 0) : bytes;
}
