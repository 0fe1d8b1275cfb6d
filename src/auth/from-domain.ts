/**
 * The domain of the From header (RFC 5322 3.6.2): the DKIM signing domain,
 * and the domain the sender policy and the return path are decided on.
 */
import addressparser from "nodemailer/lib/addressparser/index.js";
import { headerValues } from "../core/header-section.ts";
import { asciiDomain } from "../core/address.ts";

/** A local part of atext and dots, an ASCII domain: one "@", and nothing addressparser reads specially. */
const ADDR_SPEC = String.raw`[A-Za-z0-9!#$%&'*+/=?^_\`{|}~.-]+@[A-Za-z0-9.-]+`;
/** A quoted display name without quoted-pairs or control characters. */
const QUOTED_NAME = String.raw`[ \t]*"[^"\\\x00-\x1f\x7f]*"[ \t]*`;
/** A plain display name: no specials, no control characters but tab. */
const PLAIN_NAME = String.raw`[^"(),:;<>@[\]\\\x00-\x08\x0a-\x1f\x7f]*`;

/**
 * The shapes nearly every From field has: a bare addr-spec, or an angle-addr
 * after a display name, quoted, plain or none. Each part ends where the
 * next must begin, so a long value that fails costs a few passes, never a
 * backtracking blow-up.
 */
const SIMPLE_MAILBOX = new RegExp(
  String.raw`^(?:[ \t]*(${ADDR_SPEC})|(?:${QUOTED_NAME}|${PLAIN_NAME})<(${ADDR_SPEC})>)[ \t]*$`,
);

/**
 * The address of a From field value of one of the simple shapes, which is
 * what addressparser would read there (test/unit/from-domain.test.ts checks
 * it against addressparser); undefined for anything else. addressparser is
 * a careful tokenizer and costs microseconds a message; this regular
 * expression a tenth of that.
 */
export function simpleMailbox(value: string): string | undefined {
  const match = SIMPLE_MAILBOX.exec(value);
  return match ? (match[1] ?? match[2]) : undefined;
}

/** The addresses of a From field value, in order. */
function addresses(value: string): string[] {
  const simple = simpleMailbox(value);
  return simple !== undefined ? [simple] : addressparser(value, { flatten: true }).map((entry) => entry.address);
}

/**
 * The domain of the From header's address(es), as an A-label in lower case;
 * undefined when there is no From, an address has no domain, or the
 * addresses name more than one domain.
 */
export function fromDomain(message: Uint8Array): string | undefined {
  let found: string | undefined;
  let several = false;
  for (const value of headerValues(message, "from")) {
    for (const address of addresses(value)) {
      const at = address.lastIndexOf("@");
      if (at < 0) return undefined;
      const domain = asciiDomain(address.slice(at + 1));
      if (domain === "") return undefined;
      if (found === undefined) found = domain;
      else if (domain !== found) several = true;
    }
  }
  return several ? undefined : found;
}
