import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFeedback } from "../../src/feedback/read.ts";
import { bounceSample as sample } from "../helpers/bounce-samples.ts";

const RCPT = "reader@dest.test";
const RETURN_PATH = "b.01JV8ZQ4XK7M2N3P4Q5R6S7T8V.c.abcdefghij@bounces.example.test";
const bounceSample = (name: string) => sample(name, RCPT, RETURN_PATH);

describe("reading bounces (RFC 3464 reports)", () => {
  const cases = [
    {
      name: "postfix",
      format: "postfix",
      status: "5.1.1",
      diagnostic: /^550 5\.1\.1 <reader@dest\.test>: Recipient address rejected: User unknown/,
      remoteMta: "inbox.dest.test",
    },
    {
      name: "gmail",
      format: "gmail",
      status: "5.1.1",
      diagnostic: /^550-5\.1\.1 The email account that you tried to reach does not exist/,
      remoteMta: /^gmail-smtp-in\.l\.google\.com/,
    },
    {
      name: "microsoft",
      format: "microsoft",
      status: "5.2.2",
      diagnostic: /^552 5\.2\.2 STOREDRV\.Deliver; mailbox full$/,
      remoteMta: /outlook\.test$/,
    },
  ] as const;
  for (const c of cases) {
    it(`${c.name}: the failed recipient, action, status, diagnostic and remote MTA`, async () => {
      const feedback = await readFeedback(bounceSample(c.name));
      assert.equal(feedback.kind, "bounce");
      if (feedback.kind !== "bounce") return;
      assert.equal(feedback.format, c.format);
      assert.equal(feedback.originalReturnPath, RETURN_PATH);
      assert.equal(feedback.recipients.length, 1);
      const [r] = feedback.recipients;
      assert.equal(r!.address, RCPT);
      assert.equal(r!.action, "failed");
      assert.equal(r!.status, c.status);
      assert.match(r!.diagnostic ?? "", c.diagnostic);
      assert.match(r!.remoteMta ?? "", typeof c.remoteMta === "string" ? new RegExp(`^${c.remoteMta}$`) : c.remoteMta);
    });
  }

  it("a recipient the report says was delivered is no failure", async () => {
    const raw = new TextDecoder().decode(bounceSample("postfix")).replace("Action: failed", "Action: delivered");
    const feedback = await readFeedback(new TextEncoder().encode(raw));
    assert.deepEqual(feedback, { kind: "unrecognized" });
  });
});

describe("reading bounces in non-standard shapes", () => {
  const cases = [
    { name: "exim", format: "exim", action: "failed", status: "5.1.1", diagnostic: "550 5.1.1 No such user here" },
    {
      name: "exim-delayed",
      format: "exim",
      action: "delayed",
      status: "4.2.2",
      diagnostic: "452 4.2.2 Mailbox over quota",
      copy: false,
    },
    {
      name: "qmail",
      format: "qmail",
      action: "failed",
      status: "5.1.1",
      diagnostic: "550 5.1.1 Sorry, no mailbox here by that name.",
    },
    {
      name: "yahoo",
      format: "yahoo",
      action: "failed",
      status: "5.0.0",
      diagnostic:
        `554 delivery error: dd This user doesn't have a yahoo.test account (${RCPT}) [0] - mta1001.mail.yahoo.test`,
    },
  ] as const;
  for (const c of cases) {
    it(`${c.name}: the failed address and the remote reply from the notice`, async () => {
      const feedback = await readFeedback(bounceSample(c.name));
      assert.equal(feedback.kind, "bounce");
      if (feedback.kind !== "bounce") return;
      assert.equal(feedback.format, c.format);
      assert.deepEqual(feedback.recipients, [{
        address: RCPT,
        action: c.action,
        status: c.status,
        diagnostic: c.diagnostic,
      }]);
      if (!("copy" in c)) assert.equal(feedback.originalReturnPath, RETURN_PATH, "from the returned copy");
    });
  }
});

describe("automatic replies are told apart from bounces", () => {
  for (
    const [name, signal] of [
      ["autoreply-ooo", "Subject: Out of Office: December news"],
      ["autoreply-vacation", "Auto-Submitted: auto-replied"],
    ] as const
  ) {
    it(name, async () => {
      assert.deepEqual(await readFeedback(bounceSample(name)), { kind: "autoreply", signal });
    });
  }

  it("a bounce that carries Auto-Submitted (RFC 3834 5) is still a bounce", async () => {
    assert.equal((await readFeedback(bounceSample("exim"))).kind, "bounce");
  });
});

describe("reading complaints (RFC 5965 ARF)", () => {
  it("the feedback type, user agent, reported recipient and the original's return path", async () => {
    assert.deepEqual(await readFeedback(bounceSample("arf")), {
      kind: "complaint",
      feedbackType: "abuse",
      userAgent: "ISP-FBL/1.0",
      originalRcptTo: RCPT,
      originalMailFrom: RETURN_PATH,
      reportingMta: "fbl.isp.test",
      originalReturnPath: RETURN_PATH,
    });
  });
});

describe("anything else", () => {
  it("an ordinary message is neither a bounce nor a report", async () => {
    assert.deepEqual(await readFeedback(bounceSample("plain")), { kind: "unrecognized" });
  });
});
