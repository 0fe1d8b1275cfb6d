/**
 * MilterSession against real rspamd (its proxy worker in milter mode, see
 * test/helpers/rspamd.ts): it negotiates version 6 and gives a verdict at
 * end of message, accept for a clean message and its GTUBE reply for the
 * spam test pattern. Skipped when rspamd is not installed (required in CI).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Family, MILTER_VERSION } from "../../src/milter/constants.ts";
import { openMilter, parseMilterEndpoint } from "../../src/milter/endpoint.ts";
import { commonMacros } from "../../src/milter/macros.ts";
import type { MilterMessage, MilterSession } from "../../src/milter/session.ts";
import { type Rspamd, rspamdMissing, startRspamd } from "../helpers/rspamd.ts";

const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

function message(subject: string, body: string): MilterMessage {
  const content = new TextEncoder().encode(
    `From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: ${subject}\r\n` +
      `Date: Mon, 7 Dec 2026 05:00:00 +0000\r\nMessage-ID: <${subject.length}@example.com>\r\n\r\n${body}\r\n`,
  );
  return {
    sender: { address: "alice@example.com" },
    recipients: [{ address: "bob@example.org" }],
    content,
    macros: commonMacros({
      hostname: "relay.test",
      daemonName: "smtp",
      clientAddress: "127.0.0.1",
      clientName: "localhost",
      queueId: "Q1",
    }),
  };
}

describe("milter session against rspamd", () => {
  let rspamd: Rspamd | undefined;
  let session: MilterSession | undefined;
  before(async () => {
    if (rspamdMissing) return; // the test below is skipped, with the reason
    rspamd = await startRspamd();
  });
  after(async () => {
    await session?.close();
    await rspamd?.close();
  });

  it("negotiates, accepts a clean message and rejects GTUBE with rspamd's reply", { skip: rspamdMissing }, async () => {
    const { address, log } = rspamd!;
    session = await openMilter(parseMilterEndpoint(address));
    assert.equal(session.negotiated?.version, MILTER_VERSION);
    const clean = message("Lunch", "Shall we have lunch at noon?");
    await session.connect(
      { hostname: "localhost", family: Family.INET, port: 4000, address: "127.0.0.1" },
      clean.macros?.connect,
    );
    await session.helo("localhost");
    const accepted = await session.message(clean);
    assert.deepEqual([accepted.verdict, accepted.step], [{ kind: "accept" }, "eom"], log().slice(-3000));
    const spam = await session.message(message("Test spam mail (GTUBE)", GTUBE));
    assert.equal(spam.step, "eom");
    assert.ok(
      spam.verdict.kind === "replycode" && spam.verdict.reply.code === 554 && /gtube/i.test(spam.verdict.reply.text),
      JSON.stringify(spam.verdict),
    );
  });
});
