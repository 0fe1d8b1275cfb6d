/** Jazzer.js target (scripts/fuzz.ts): SMTP command lines, MAIL and RCPT paths and parameters, BDAT arguments. */
import { formatPath } from "../../src/core/address.ts";
import { parseBdat, parseCommand, parseMailFrom, parseRcptTo } from "../../src/smtp/protocol/index.ts";
import { check } from "./check.ts";

export function fuzz(data: Buffer): void {
  const { verb, args } = parseCommand(data.toString("utf8"));
  check(verb === verb.toUpperCase(), "verb not upper-cased");
  const from = parseMailFrom(args);
  if (from.ok) {
    const again = parseMailFrom(`FROM:${formatPath(from.from)} SMTPUTF8`);
    check(again.ok && JSON.stringify(again.from) === JSON.stringify(from.from), "MAIL path formats back");
  } else check(from.reply.code >= 400 && from.reply.code < 600, "MAIL refusal code");
  const to = parseRcptTo(args, data.length % 2 === 0, "relay.example");
  if (to.ok) {
    const again = parseRcptTo(`TO:${formatPath(to.to)}`, true, "relay.example");
    check(again.ok && JSON.stringify(again.to) === JSON.stringify(to.to), "RCPT path formats back");
  } else check(to.reply.code >= 400 && to.reply.code < 600, "RCPT refusal code");
  const bdat = parseBdat(args);
  if (bdat) check(Number.isSafeInteger(bdat.size) && bdat.size >= 0, "BDAT size");
}
