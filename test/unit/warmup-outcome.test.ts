import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reply } from "../../src/core/reply.ts";
import { classifyReply, classifyTransportError } from "../../src/delivery/classify.ts";
import { warmupOutcomeOf } from "../../src/delivery/warmup-outcome.ts";

const outcomeOf = (code: number, enhanced: string | undefined, text: string) =>
  warmupOutcomeOf(classifyReply(reply(code, enhanced, text)));

describe("what a reply counts as for warmup", () => {
  it("accepted: delivered; refused for spam or policy: blocked", () => {
    assert.equal(outcomeOf(250, "2.0.0", "OK"), "delivered");
    assert.equal(outcomeOf(550, "5.7.1", "Message rejected as spam"), "blocked");
    assert.equal(outcomeOf(554, "5.7.1", "Service unavailable; client host blocked using Spamhaus"), "blocked");
    assert.equal(outcomeOf(550, "5.7.606", "Access denied, banned sending IP"), "blocked");
  });

  it("temporary failures are deferrals, greylisting apart", () => {
    assert.equal(outcomeOf(421, "4.7.28", "Our system has detected an unusual rate of unsolicited mail"), "deferred");
    assert.equal(
      outcomeOf(451, "4.7.650", "The mail server [192.0.2.7] has been temporarily rate limited due to IP reputation"),
      "deferred",
    );
    assert.equal(warmupOutcomeOf(classifyTransportError("connect")), "deferred");
    assert.equal(outcomeOf(450, "4.2.0", "Greylisted, please retry in 5 minutes"), undefined);
  });

  it("permanent failures that say nothing of the IP count for nothing", () => {
    assert.equal(outcomeOf(550, "5.1.1", "User unknown"), undefined);
    assert.equal(outcomeOf(552, "5.2.2", "Mailbox full"), undefined);
  });
});
