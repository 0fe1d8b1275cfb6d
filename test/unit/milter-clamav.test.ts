/**
 * MilterSession against real ClamAV (clamav-milter in front of clamd, see
 * test/helpers/clamav.ts, whose only signature is the EICAR test file's):
 * a message with EICAR attached is rejected, a clean one with an ordinary
 * attachment accepted, each with the X-Virus-Status field clamav-milter adds
 * (AddHeader Replace), over one connection or several; with clamd gone the
 * message is deferred (OnFail Defer). Skipped when ClamAV is not installed
 * (required in CI).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Family } from "../../src/milter/constants.ts";
import type { MilterModification } from "../../src/milter/edits.ts";
import { openMilter, parseMilterEndpoint } from "../../src/milter/endpoint.ts";
import { commonMacros } from "../../src/milter/macros.ts";
import type { MilterMessage, MilterMessageResult, MilterSession } from "../../src/milter/session.ts";
import { type ClamAV, clamavMissing, EICAR, EICAR_SIGNATURE, startClamAV } from "../helpers/clamav.ts";

const macros = commonMacros({
  hostname: "relay.test",
  daemonName: "smtp",
  clientAddress: "192.0.2.1",
  clientName: "client.example",
  queueId: "Q1",
});

/** A multipart/mixed message: a text part, then `attachment` as a base64 file named `filename`. */
function withAttachment(subject: string, filename: string, attachment: string, extraFields = ""): MilterMessage {
  const base64 = Buffer.from(attachment).toString("base64").replace(/.{1,76}/g, "$&\r\n");
  const content = new TextEncoder().encode(
    `From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: ${subject}\r\n${extraFields}` +
      `Date: Mon, 7 Dec 2026 05:00:00 +0000\r\nMessage-ID: <${filename}@example.com>\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: multipart/mixed; boundary="b1"\r\n\r\n` +
      `--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe file you asked for.\r\n` +
      `--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="${filename}"\r\n` +
      `Content-Transfer-Encoding: base64\r\n\r\n${base64}--b1--\r\n`,
  );
  return { sender: { address: "alice@example.com" }, recipients: [{ address: "bob@example.org" }], content, macros };
}

const infected = () => withAttachment("The file", "eicar.com", EICAR);
const clean = () => withAttachment("Minutes", "minutes.txt", "Minutes of the meeting of 4 December.\n");

/** The fields clamav-milter adds to every message it scanned, the second saying what it found. */
function virusFields(status: string): MilterModification[] {
  return [
    { kind: "add-header", name: "X-Virus-Scanned", value: " clamav-milter (version) at (host)" },
    { kind: "add-header", name: "X-Virus-Status", value: ` ${status}` },
  ];
}

/** The modifications, with X-Virus-Scanned's version and host name (this machine's) made comparable. */
function comparable(result: MilterMessageResult): MilterModification[] {
  return result.modifications.map((edit) =>
    edit.kind === "add-header" && edit.name === "X-Virus-Scanned"
      ? { ...edit, value: edit.value.replace(/^ clamav-milter \S+ at \S+$/, " clamav-milter (version) at (host)") }
      : edit
  );
}

describe("milter session against clamav-milter", () => {
  let clamav: ClamAV | undefined;
  const sessions: MilterSession[] = [];
  before(async () => {
    if (clamavMissing) return; // the tests below are skipped, with the reason
    clamav = await startClamAV();
  });
  after(async () => {
    for (const session of sessions) await session.close();
    await clamav?.stop();
  });

  /** A new connection to clamav-milter, past CONNECT and HELO as an SMTP server sends them. */
  async function connection(): Promise<MilterSession> {
    const session = await openMilter(parseMilterEndpoint(clamav!.address));
    sessions.push(session);
    const client = { hostname: "client.example", family: Family.INET, port: 4000, address: "192.0.2.1" };
    assert.deepEqual(await session.connect(client, macros.connect), { kind: "continue" });
    assert.deepEqual(await session.helo("client.example"), { kind: "continue" });
    return session;
  }

  it("rejects a message with the EICAR test file attached, naming the signature", { skip: clamavMissing }, async () => {
    const result = await (await connection()).message(infected());
    // OnInfected Reject: a bare SMFIR_REJECT, no reply text of its own (no RejectMsg).
    assert.deepEqual(
      [result.verdict, result.step, comparable(result)],
      [{ kind: "reject" }, "eom", virusFields(`Infected (${EICAR_SIGNATURE}.UNOFFICIAL)`)],
      clamav!.log().slice(-3000),
    );
  });

  it("accepts a clean message with an ordinary attachment", { skip: clamavMissing }, async () => {
    const result = await (await connection()).message(clean());
    assert.deepEqual(
      [result.verdict, result.step, comparable(result)],
      [{ kind: "accept" }, "eom", virusFields("Clean")],
      clamav!.log().slice(-3000),
    );
  });

  it("scans message after message over one connection", { skip: clamavMissing }, async () => {
    const session = await connection();
    const forged = withAttachment("Minutes", "minutes.txt", "Minutes.\n", "X-Virus-Status: Clean\r\n");
    const verdicts = [];
    for (const message of [clean(), infected(), forged, infected(), clean()]) {
      verdicts.push((await session.message(message)).verdict.kind);
    }
    assert.deepEqual(verdicts, ["accept", "reject", "accept", "reject", "accept"]);
    // AddHeader Replace: a sender's own X-Virus-Status is removed (changed to nothing) before clamav-milter's own.
    const result = await session.message(
      withAttachment("The file", "eicar.com", EICAR, "X-Virus-Status: Clean\r\n"),
    );
    assert.deepEqual(
      [result.verdict, comparable(result)],
      [
        { kind: "reject" },
        [
          { kind: "change-header", index: 1, name: "X-Virus-Status", value: "" },
          ...virusFields(`Infected (${EICAR_SIGNATURE}.UNOFFICIAL)`),
        ],
      ],
    );
  });

  // Last, as it stops clamd for good (one clamd for the file keeps it short).
  it("defers each message once clamd is gone (OnFail Defer)", { skip: clamavMissing }, async () => {
    await clamav!.stopClamd();
    const session = await connection();
    for (const message of [clean(), infected()]) {
      // A bare SMFIR_TEMPFAIL at the first header, where clamav-milter opens its stream to clamd.
      const result = await session.message(message);
      assert.deepEqual([result.verdict, result.step, result.modifications], [{ kind: "tempfail" }, "header", []]);
    }
  });
});
