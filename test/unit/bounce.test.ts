import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type BouncedMessage, bounceMessage, type FailedRecipient } from "../../src/delivery/bounce.ts";
import { reply } from "../../src/core/reply.ts";

const NOW = Date.UTC(2025, 0, 2, 3, 4, 5);
const ORIGINAL = new TextEncoder().encode(
  "From: a@sender.example\r\nTo: b@dest.example\r\nSubject: hi\r\n\r\nbody text\r\n",
);

const message = (over: Partial<BouncedMessage> = {}): BouncedMessage => ({
  mailFrom: "Alice@Sender.Example",
  createdAt: NOW - 3_600_000,
  body: ORIGINAL,
  dsnRet: null,
  dsnEnvid: null,
  ...over,
});
const failed = (over: Partial<FailedRecipient> = {}): FailedRecipient => ({
  address: "bob@dest.example",
  reply: reply(550, "5.1.1", "no such user"),
  expired: false,
  ...over,
});

const text = (body: Uint8Array) => new TextDecoder("latin1").decode(body);
/** Status fields of the DSN's per-recipient sections, in order. */
const statuses = (body: Uint8Array) => [...text(body).matchAll(/^Status: (\S+)\r$/gm)].map((m) => m[1]);
const finalRecipients = (body: Uint8Array) =>
  [...text(body).matchAll(/^Final-Recipient: rfc822; ?(\S+)\r$/gim)].map((m) => m[1]);

describe("bounceMessage: who gets a DSN", () => {
  it("the DSN goes from <> to the original sender, as a bounce", () => {
    const dsn = bounceMessage(message(), [failed()], "relay.example", NOW);
    assert.ok(dsn);
    assert.equal(dsn.mailFrom, "");
    assert.equal(dsn.source, "bounce");
    assert.deepEqual(dsn.recipients, [{ address: "Alice@Sender.Example", domain: "sender.example" }]);
    assert.match(text(dsn.body), /multipart\/report/i);
  });

  it("never bounces a bounce: no DSN for the null sender", () => {
    assert.equal(bounceMessage(message({ mailFrom: "" }), [failed()], "relay.example", NOW), undefined);
    assert.equal(
      bounceMessage(message({ mailFrom: "" }), [failed({ notify: "FAILURE" })], "relay.example", NOW),
      undefined,
    );
  });

  it("NOTIFY=NEVER means no DSN", () => {
    assert.equal(bounceMessage(message(), [failed({ notify: "NEVER" })], "relay.example", NOW), undefined);
    assert.equal(bounceMessage(message(), [failed({ notify: "never" })], "relay.example", NOW), undefined);
  });

  it("NOTIFY without FAILURE (SUCCESS, DELAY, or both) means no failure DSN", () => {
    for (const notify of ["SUCCESS", "DELAY", "SUCCESS,DELAY"]) {
      assert.equal(bounceMessage(message(), [failed({ notify })], "relay.example", NOW), undefined, notify);
    }
  });

  it("NOTIFY absent, empty, or including FAILURE gets a DSN", () => {
    for (const notify of [undefined, "", "FAILURE", "failure", "SUCCESS,FAILURE", "FAILURE,DELAY"]) {
      assert.ok(bounceMessage(message(), [failed({ notify })], "relay.example", NOW), String(notify));
    }
  });

  it("reports only the recipients whose NOTIFY asks for it", () => {
    const dsn = bounceMessage(
      message(),
      [
        failed({ address: "a@dest.example", notify: "NEVER" }),
        failed({ address: "b@dest.example" }),
        failed({ address: "c@dest.example", notify: "SUCCESS" }),
        failed({ address: "d@dest.example", notify: "FAILURE" }),
      ],
      "relay.example",
      NOW,
    );
    assert.ok(dsn);
    assert.deepEqual(finalRecipients(dsn.body), ["b@dest.example", "d@dest.example"]);
  });
});

describe("bounceMessage: the status of each recipient", () => {
  const statusOf = (r: Partial<FailedRecipient>) => {
    const dsn = bounceMessage(message(), [failed(r)], "relay.example", NOW);
    assert.ok(dsn);
    return statuses(dsn.body);
  };

  it("uses the remote server's well-formed enhanced code", () => {
    assert.deepEqual(statusOf({ reply: reply(550, "5.1.1", "no such user") }), ["5.1.1"]);
    assert.deepEqual(statusOf({ reply: reply(552, "5.2.2", "mailbox full") }), ["5.2.2"]);
    assert.deepEqual(statusOf({ reply: reply(550, "5.7.26", "DMARC") }), ["5.7.26"]);
  });

  it("an expired recipient is 5.4.7 whatever the last reply said", () => {
    assert.deepEqual(statusOf({ expired: true, reply: reply(451, "4.3.0", "try later") }), ["5.4.7"]);
    assert.deepEqual(statusOf({ expired: true, reply: reply(421, undefined, "busy") }), ["5.4.7"]);
  });

  it("a malformed or missing remote enhanced code falls back to 5.0.0", () => {
    for (const enhanced of [undefined, "", "5.1", "5.1.1.1", "6.1.1", "5.1234.1", "x.y.z", "5.1.1 "]) {
      assert.deepEqual(statusOf({ reply: reply(550, enhanced, "rejected") }), ["5.0.0"], String(enhanced));
    }
  });

  it("keeps the remote reply as the diagnostic and lists every reported recipient", () => {
    const dsn = bounceMessage(
      message(),
      [
        failed({ address: "x@dest.example" }),
        failed({ address: "y@dest.example", expired: true, reply: reply(451, "4.4.1", "no answer") }),
      ],
      "relay.example",
      NOW,
    );
    assert.ok(dsn);
    assert.deepEqual(statuses(dsn.body), ["5.1.1", "5.4.7"]);
    assert.match(text(dsn.body), /Diagnostic-Code: smtp; ?550 5\.1\.1 no such user/);
    assert.match(text(dsn.body), /Reporting-MTA: dns; ?relay\.example/);
  });

  it("nothing failed, nothing to report", () => {
    assert.equal(bounceMessage(message(), [], "relay.example", NOW), undefined);
  });
});
