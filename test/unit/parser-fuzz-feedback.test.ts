/**
 * Fuzzing what arrives at the bounce domain (src/feedback/): DSN (RFC 3464)
 * and ARF (RFC 5965) reports, text bounces and automatic replies, read from
 * random bytes and from mutations of the samples in test/fixtures/bounces/.
 * Anyone may send there, so reading must end (the runner's timeout catches a
 * hang), give a Feedback of a known kind, or reject with an Error (the
 * receiver logs and drops the message). RELAY_FUZZ_RUNS=N scales the runs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { fieldGroups, typedValue } from "../../src/feedback/fields.ts";
import { readFeedback } from "../../src/feedback/read.ts";
import type { Feedback } from "../../src/feedback/report.ts";
import { textBounce } from "../../src/feedback/text-bounce.ts";
import { bounceSample } from "../helpers/bounce-samples.ts";
import { mutated, runs, trickyText } from "../helpers/fuzz.ts";

const SAMPLES = [
  "arf",
  "autoreply-ooo",
  "autoreply-vacation",
  "exim-delayed",
  "exim",
  "gmail",
  "microsoft",
  "plain",
  "postfix",
  "qmail",
  "yahoo",
].map((name) => bounceSample(name, "rcpt@example.net", "bounce+tag@bounces.example.com"));

const STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;

function checkFeedback(feedback: Feedback): void {
  assert.ok(["bounce", "complaint", "autoreply", "unrecognized"].includes(feedback.kind), feedback.kind);
  if (feedback.kind !== "bounce") return;
  assert.ok(feedback.recipients.length > 0);
  for (const r of feedback.recipients) {
    assert.ok(r.action === "failed" || r.action === "delayed", r.action);
    if (r.status !== undefined) assert.match(r.status, STATUS);
  }
}

/** Reads a message: a Feedback, or a rejection with an Error; nothing else. */
async function read(raw: Uint8Array): Promise<void> {
  let feedback: Feedback;
  try {
    feedback = await readFeedback(raw);
  } catch (error) {
    assert.ok(error instanceof Error, `rejected with ${String(error)}`);
    return;
  }
  checkFeedback(feedback);
}

const sample = fc.constantFrom(...SAMPLES);

describe("bounce and complaint reading under fuzzing", () => {
  it("random bytes give a Feedback or an Error", async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), read), runs(200));
  });

  it("mutated DSN, ARF, text bounce and autoreply samples give a Feedback or an Error", async () => {
    await fc.assert(fc.asyncProperty(mutated(sample), read), runs(300));
  });

  it("field groups and typed values take any text", () => {
    fc.assert(
      fc.property(trickyText(":;\r\n \t<>", 300), (text) => {
        for (const group of fieldGroups(text)) {
          for (const [name, value] of group) {
            assert.equal(name, name.toLowerCase());
            const typed = typedValue(value);
            if (typed !== undefined) assert.equal(typed, typed.trim());
          }
        }
      }),
      runs(500),
    );
  });

  // Finding: "<" and ">" were stripped after the trim, so "rfc822; < >" named the address " ".
  it("regression: a typed value is trimmed inside its angle brackets too", () => {
    assert.equal(typedValue("rfc822; < >"), undefined);
    assert.equal(typedValue("rfc822; < a@example.com >"), "a@example.com");
  });

  it("text bounces give failed or delayed recipients with a well-formed status", () => {
    const signature = fc.constantFrom(
      "Hi. This is the qmail-send program",
      "This is the mail system at host mx.example.net",
      "Delivery has failed to these recipients or groups",
      "Delivery Status Notification (Delay)",
    );
    const body = fc.tuple(signature, trickyText("\n<>@:;#-. 45", 400)).map(([s, rest]) => `${s}\n${rest}`);
    fc.assert(
      fc.property(body, fc.option(trickyText("@,. ", 60), { nil: undefined }), (text, failed) => {
        const found = textBounce(text, "", failed);
        if (found) checkFeedback({ kind: "bounce", ...found });
      }),
      runs(500),
    );
  });

  // Findings: regexes over the notice backtracked quadratically (64 kB took 4-6 s; a message may hold megabytes).
  describe("regression: long runs in a bounce are read in linear time", () => {
    const qmail = "Hi. This is the qmail-send program";
    const big = 1 << 20;
    it("blank lines (the copy marker's \\s* crossed lines)", () => {
      assert.ok(textBounce(`${"\n".repeat(big)}x`, qmail, undefined));
    });
    it("a line of dashes (the copy marker's -{2,}.*)", () => {
      assert.ok(textBounce(`${"-".repeat(big)}x`, qmail, undefined));
    });
    it("X-Failed-Recipients without an address (an unanchored address pattern)", () => {
      assert.ok(textBounce("x", qmail, `${"a".repeat(big)}@`));
    });
    it("a whole message with blank lines after a bounce notice", async () => {
      const raw = new TextEncoder().encode(`Subject: failure\r\n\r\n${qmail}\r\n${"\r\n".repeat(big / 8)}x\r\n`);
      assert.equal((await readFeedback(raw)).kind, "bounce");
    });
  });
});
