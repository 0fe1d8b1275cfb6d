import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { classifyReply, classifyTransportError } from "../../src/delivery/classify.ts";
import { reply } from "../../src/core/reply.ts";

const classify = (code: number, enhanced: string | undefined, text: string) =>
  classifyReply(reply(code, enhanced, text));
const category = (code: number, enhanced: string | undefined, text: string) => classify(code, enhanced, text).category;

describe("classifyReply dispositions", () => {
  it("2xx and 3xx are delivered, 4xx deferred, 5xx bounced", () => {
    assert.deepEqual(classify(250, "2.0.0", "OK queued as 123"), { disposition: "delivered" });
    assert.equal(classify(251, undefined, "will forward").disposition, "delivered");
    assert.equal(classify(399, undefined, "x").disposition, "delivered");
    assert.equal(classify(400, undefined, "x").disposition, "deferred");
    assert.equal(classify(451, "4.3.0", "local error").disposition, "deferred");
    assert.equal(classify(499, undefined, "x").disposition, "deferred");
    assert.equal(classify(500, undefined, "x").disposition, "bounced");
    assert.equal(classify(554, "5.7.1", "no").disposition, "bounced");
  });

  it("a positive reply has no failure category, whatever its text", () => {
    assert.deepEqual(classify(250, "2.1.5", "spam filter says user unknown, quota fine"), { disposition: "delivered" });
  });

  it("an unknown failure is 'other' but keeps its disposition", () => {
    assert.deepEqual(classify(554, undefined, "transaction failed"), { disposition: "bounced", category: "other" });
    assert.deepEqual(classify(451, undefined, "local problem"), { disposition: "deferred", category: "other" });
  });
});

describe("classifyReply by enhanced status code (RFC 3463)", () => {
  const cases: [string, string][] = [
    ["5.1.1", "bad-mailbox"],
    ["5.1.6", "bad-mailbox"],
    ["5.1.2", "bad-domain"],
    ["5.1.7", "invalid-sender"],
    ["5.1.8", "invalid-sender"],
    ["5.2.1", "inactive-mailbox"],
    ["4.2.2", "quota-issues"],
    ["5.2.2", "quota-issues"],
    ["5.2.3", "content-related"],
    ["5.3.4", "content-related"],
    ["4.4.1", "routing-errors"],
    ["5.4.4", "routing-errors"],
    ["4.4.7", "routing-errors"],
    ["5.5.2", "protocol-errors"],
    ["5.6.0", "content-related"],
    ["5.7.1", "policy-related"],
    ["5.7.26", "policy-related"],
    ["4.7.0", "policy-related"],
  ];
  for (const [enhanced, expected] of cases) {
    it(`${enhanced} → ${expected}`, () => {
      const code = enhanced.startsWith("4") ? 450 : 550;
      // Neutral text, so only the enhanced code can decide.
      assert.equal(category(code, enhanced, "rejected"), expected);
    });
  }

  it("the enhanced code decides where the text alone would say otherwise", () => {
    assert.equal(category(550, "5.1.1", "mailbox full"), "bad-mailbox");
    assert.equal(category(550, "5.2.2", "no such user"), "quota-issues");
  });

  it("5.7.1 mentioning relaying is a relaying issue, otherwise policy", () => {
    assert.equal(category(550, "5.7.1", "Relaying denied"), "relaying-issues");
    assert.equal(category(550, "5.7.1", "Message refused by policy"), "policy-related");
  });

  it("codes outside the table fall through to text patterns, then other", () => {
    assert.equal(category(550, "5.1.3", "rejected"), "other");
    assert.equal(category(550, "5.3.0", "rejected"), "other");
    assert.equal(category(550, "5.1.3", "no such user here"), "bad-mailbox");
  });
});

describe("classifyReply by text, for servers with generic or no enhanced codes", () => {
  const cases: [number, string | undefined, string, string][] = [
    [450, "4.7.1", "Greylisted, please try again later", "greylisting"],
    [451, undefined, "greylisting in action", "greylisting"],
    [452, undefined, "graylist: please retry", "greylisting"],
    [421, "4.7.0", "Rate limit exceeded", "throttling"],
    [450, undefined, "Too many connections from your IP", "throttling"],
    [451, undefined, "Throttled: temporarily deferred", "throttling"],
    [421, undefined, "Service not available, closing channel", "throttling"],
    [554, "5.7.1", "Message blocked: listed on Spamhaus", "spam-related"],
    [550, undefined, "Your IP has a poor reputation", "spam-related"],
    [550, "5.0.0", "blacklisted", "spam-related"],
    [554, undefined, "Virus found in message", "virus-related"],
    [552, undefined, "Mailbox full", "quota-issues"],
    [552, undefined, "user is over quota", "quota-issues"],
    [550, undefined, "User unknown in virtual mailbox table", "bad-mailbox"],
    [550, "5.0.0", "Requested action not taken: mailbox unavailable", "bad-mailbox"],
    [550, undefined, "Recipient address does not exist", "bad-mailbox"],
    [554, undefined, "delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0]", "bad-mailbox"],
    [550, undefined, "Sorry, no mailbox here by that name. (#5.1.1)", "bad-mailbox"],
    [550, undefined, "Relay access denied", "relaying-issues"],
    [554, undefined, "we are not permitted to relay", "relaying-issues"],
    [500, undefined, "Syntax error, command unrecognized", "protocol-errors"],
    [502, "5.0.0", "Command not implemented", "protocol-errors"],
  ];
  for (const [code, enhanced, text, expected] of cases) {
    it(`${code} ${enhanced ?? ""} "${text}" → ${expected}`, () => {
      assert.equal(category(code, enhanced, text), expected);
    });
  }

  it("greylisting needs a 45x code; the same text on a 5xx is not greylisting", () => {
    assert.notEqual(category(550, undefined, "greylisted, try again later"), "greylisting");
    assert.notEqual(category(421, undefined, "greylisted, try again later"), "greylisting");
  });

  it("matches text across every line of a multi-line reply", () => {
    const r = { code: 550, enhanced: undefined, lines: ["Sorry,", "no such user", "here"] };
    assert.equal(classifyReply(r).category, "bad-mailbox");
  });

  it("421 without recognised text is throttling only for 421", () => {
    assert.equal(category(421, undefined, "closing"), "throttling");
    assert.equal(category(450, undefined, "closing"), "other");
  });
});

describe("classifyTransportError", () => {
  it("every transport failure is deferred", () => {
    assert.deepEqual(classifyTransportError("timeout"), { disposition: "deferred", category: "no-answer-from-host" });
    assert.deepEqual(classifyTransportError("dns"), { disposition: "deferred", category: "routing-errors" });
    for (const kind of ["connect", "tls", "disconnect"] as const) {
      assert.deepEqual(classifyTransportError(kind), { disposition: "deferred", category: "bad-connection" }, kind);
    }
  });
});

describe("classifyReply: the enhanced code is the most reliable signal (classify.ts doc)", () => {
  it(
    "an address quoted in the reply text does not override the enhanced code",
    {},
    () => {
      assert.equal(
        category(550, "5.1.1", "<spam-reports@example.com>: Recipient address rejected: User unknown"),
        "bad-mailbox",
      );
      assert.equal(category(550, "5.1.1", "<blocked-list@example.com>: no such user"), "bad-mailbox");
    },
  );

  it(
    "a quota deferral that says 'try again later' is a quota issue, not greylisting",
    {},
    () => {
      assert.equal(category(452, "4.2.2", "Mailbox full, try again later"), "quota-issues");
    },
  );
});
