import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { reply } from "../../src/core/reply.ts";
import {
  type AutomationState,
  DestinationAutomation,
  type DestinationChange,
  type OwnLimits,
} from "../../src/shaping/destination-automation.ts";
import { destinationEvent } from "../../src/shaping/destination-event.ts";
import { formatShapingError, loadShapingRules } from "../../src/shaping/load.ts";
import type { AutomationRule } from "../../src/shaping/rules.ts";
import { shippedShaping } from "../../src/shaping/shipped.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { wireReply } from "../helpers/smtp-reply.ts";

const MIN = 60_000;
const HOUR = 60 * MIN;

/** The `automation:` section of a shaping file, read through the loader with the providers example and second. */
function automationRules(section: string): readonly AutomationRule[] {
  const loaded = loadShapingRules(
    `default:
  connections: 1
  connection_rate: unlimited
  messages_per_connection: 1
  recipients_per_transaction: 1
  message_rate: unlimited
  idle_timeout: 1s
  retry: [1m]
providers:
  example: { mx_suffixes: [example.net] }
  second: { mx_suffixes: [second.net] }
automation:
${section}`,
    "rules.yaml",
  );
  assert.ok(loaded.ok, loaded.ok ? "" : loaded.errors.map(formatShapingError).join("\n"));
  return loaded.rules.automation;
}

const OWN: OwnLimits = {
  connections: 8,
  connectionRate: "unlimited",
  messagesPerConnection: 100,
  recipientsPerTransaction: 100,
  messageRate: { count: 1000, per: "min" },
};

/** An automation on a fake clock, with every change it reported, times relative to the start. */
function automated(rules: readonly AutomationRule[], provider?: string, own: OwnLimits = OWN) {
  const clock = new FakeClock();
  const start = clock.now();
  const changes: DestinationChange[] = [];
  const automation = new DestinationAutomation({ rules, provider, own, clock, onChange: (c) => changes.push(c) });
  /**
   * The changes reported so far (and forgotten), each as [type, minutes from the start, rule or
   * "operator", then for a suspension until, for a throttle until, limits and end (minutes)].
   */
  const reported = () =>
    changes.splice(0).map((c) => {
      const cause = c.cause.reason === "operator" ? "operator" : c.cause.rule;
      const at = (c.at - start) / MIN;
      if (c.type === "destination_resumed") return [c.type, at, cause];
      const until = (c.until - start) / MIN;
      if (c.type === "destination_suspended") return [c.type, at, cause, until];
      return [c.type, at, cause, until, c.limits, (c.ends - start) / MIN];
    });
  const kind = (state: AutomationState = automation.state()) => state.kind;
  return { clock, start, automation, reported, kind };
}

const slowDown = reply(421, "4.7.0", "slow down");

describe("DestinationAutomation: thresholds", () => {
  const rules = automationRules(`  slow:
    match: { text: "slow down" }
    threshold: { matches: 3, within: 1h }
    action: suspend
    duration: 10m
`);

  it("acts on the third matching reply within the window, counting only those inside it", async () => {
    const { clock, automation, reported, kind } = automated(rules);
    assert.deepEqual(automation.observe(slowDown), { rule: rules[0], acted: false, bounce: false });
    await clock.advance(30 * MIN);
    assert.equal(automation.observe(slowDown).acted, false);
    await clock.advance(31 * MIN); // the first reply is older than an hour now: two within the window
    assert.equal(automation.observe(slowDown).acted, false);
    assert.equal(kind(), "normal");
    assert.deepEqual(reported(), []);
    await clock.advance(MIN);
    assert.deepEqual(automation.observe(slowDown), { rule: rules[0], acted: true, bounce: false });
    assert.deepEqual(reported(), [["destination_suspended", 62, "slow", 72]]);
  });

  it("counts again from nothing after acting", async () => {
    const { clock, automation } = automated(rules);
    for (let i = 0; i < 3; i++) automation.observe(slowDown);
    await clock.advance(10 * MIN);
    assert.equal(automation.observe(slowDown).acted, false);
    assert.equal(automation.observe(slowDown).acted, false);
    assert.equal(automation.observe(slowDown).acted, true);
  });

  it("neither a reply no rule matches nor a success counts", () => {
    const { automation, kind } = automated(rules);
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(automation.observe(reply(451, "4.3.0", "try later")), { acted: false, bounce: false });
      assert.deepEqual(automation.observe(reply(250, "2.0.0", "ok, no need to slow down")), {
        acted: false,
        bounce: false,
      });
    }
    assert.equal(kind(), "normal");
    assert.equal(automation.isIdle(), true);
  });

  it("is idle once no counted reply is within its window any more", async () => {
    const { clock, automation } = automated(rules);
    automation.observe(slowDown);
    assert.equal(automation.isIdle(), false, "one reply counts toward the threshold");
    await clock.advance(HOUR);
    assert.equal(automation.isIdle(), true);
  });
});

describe("DestinationAutomation: which rule acts", () => {
  const rules = automationRules(`  any-slow:
    match: { text: "slow down" }
    action: throttle
    limits: { connections: 2 }
    duration: 1h
  example-slow:
    provider: example
    match: { text: "slow down" }
    action: suspend
    duration: 1h
`);

  it("the provider's own rule before the rule for any destination, though written after it", () => {
    const example = automated(rules, "example");
    assert.equal(example.automation.observe(slowDown).rule?.name, "example-slow");
    assert.equal(example.kind(), "suspended");
  });

  it("another provider's destination, and one of no provider, get the rule for any destination", () => {
    for (const provider of ["second", undefined]) {
      const other = automated(rules, provider);
      assert.equal(other.automation.observe(slowDown).rule?.name, "any-slow");
      assert.equal(other.kind(), "throttled", String(provider));
    }
  });
});

describe("DestinationAutomation: throttle and recovery", () => {
  const rules = automationRules(`  rate-limited:
    match: { text: "rate limited" }
    action: throttle
    limits: { message_rate: 1/min, connections: 1 }
    duration: 30m
    recovery: { steps: 3, every: 10m }
  brief:
    match: { text: "brief" }
    action: throttle
    limits: { connections: 1 }
    duration: 5m
`);
  const rateLimited = reply(451, "4.7.650", "temporarily rate limited");

  it("tighter limits for the duration, then back to the own ones in steps, one every `every`", async () => {
    const { clock, start, automation, reported } = automated(rules);
    assert.equal(automation.observe(rateLimited).acted, true);
    const throttle = { messageRate: { count: 1, per: "min" }, connections: 1 };
    assert.deepEqual(reported(), [["destination_throttled", 0, "rate-limited", 30, throttle, 50]]);
    assert.deepEqual(automation.state(), {
      kind: "throttled",
      limits: throttle,
      until: start + 30 * MIN,
      ends: start + 50 * MIN,
      cause: { reason: "automation", rule: "rate-limited", reply: "451 4.7.650 temporarily rate limited" },
    });

    // Geometric: 1/min toward 1000/min is 10/min, then 100/min; 1 connection toward 8 is 2, then 4.
    await clock.advance(30 * MIN);
    const step1 = { messageRate: { count: 10, per: "min" }, connections: 2 };
    assert.deepEqual(reported(), [["destination_throttled", 30, "rate-limited", 40, step1, 50]]);
    await clock.advance(10 * MIN);
    const step2 = { messageRate: { count: 100, per: "min" }, connections: 4 };
    assert.deepEqual(reported(), [["destination_throttled", 40, "rate-limited", 50, step2, 50]]);
    await clock.advance(10 * MIN);
    assert.deepEqual(reported(), [["destination_resumed", 50, "rate-limited"]]);
    assert.deepEqual(automation.state(), { kind: "normal" });
    assert.deepEqual(clock.pending, [], "no timer while normal");
  });

  it("a state asked for in the future reads the step due then", () => {
    const { start, automation } = automated(rules);
    automation.observe(rateLimited);
    const at45 = automation.state(start + 45 * MIN);
    assert.deepEqual(at45.kind === "throttled" && at45.limits, {
      messageRate: { count: 100, per: "min" },
      connections: 4,
    });
    assert.equal(automation.state(start + 50 * MIN).kind, "normal");
  });

  it("a change whose time passed before its timer fired is reported first, at its own time", async () => {
    const { clock, automation, reported } = automated(rules);
    automation.observe(rateLimited);
    reported();
    clock.set(clock.now() + 35 * MIN); // the clock stepped; the timer is still pending
    automation.observe(reply(421, "4.7.0", "brief pause"));
    const step1 = { messageRate: { count: 10, per: "min" }, connections: 2 };
    assert.deepEqual(reported(), [
      ["destination_throttled", 30, "rate-limited", 40, step1, 50],
      ["destination_throttled", 35, "brief", 40, { ...step1, connections: 1 }, 50],
    ]);
  });

  it("without recovery, back to the own limits at once when the duration ends", async () => {
    const { clock, automation, reported } = automated(rules);
    automation.observe(reply(421, undefined, "brief"));
    await clock.advance(5 * MIN);
    assert.deepEqual(reported(), [
      ["destination_throttled", 0, "brief", 5, { connections: 1 }, 5],
      ["destination_resumed", 5, "brief"],
    ]);
  });

  it("toward an unlimited own rate each step doubles, and the last lifts the limit", async () => {
    const unlimited = { ...OWN, messageRate: "unlimited" as const };
    const { clock, automation, reported } = automated(rules, undefined, unlimited);
    automation.observe(rateLimited);
    await clock.advance(40 * MIN);
    const steps = reported().map((c) => c[4]);
    assert.deepEqual(steps, [
      { messageRate: { count: 1, per: "min" }, connections: 1 },
      { messageRate: { count: 2, per: "min" }, connections: 2 },
      { messageRate: { count: 4, per: "min" }, connections: 4 },
    ]);
  });

  it("a limit the destination's own holds tighter stays its own while recovering", async () => {
    const { clock, automation, reported } = automated(rules, undefined, { ...OWN, connections: 1 });
    automation.observe(rateLimited);
    await clock.advance(30 * MIN);
    assert.deepEqual(reported()[1]?.[4], { messageRate: { count: 10, per: "min" }, connections: 1 });
  });

  it("new own limits (a reload) are what recovery leads back to from then on", async () => {
    const { clock, automation, reported } = automated(rules);
    automation.observe(rateLimited);
    await clock.advance(30 * MIN);
    reported();
    automation.update(rules, { ...OWN, messageRate: { count: 1_000_000, per: "min" }, connections: 27 });
    const step1 = { messageRate: { count: 100, per: "min" }, connections: 3 };
    assert.deepEqual(reported(), [["destination_throttled", 30, "rate-limited", 40, step1, 50]]);
  });
});

describe("DestinationAutomation: suspend, bounce, and actions that overlap", () => {
  const rules = automationRules(`  stop:
    match: { text: "stop" }
    action: suspend
    duration: 1h
  short-stop:
    match: { text: "pause" }
    action: suspend
    duration: 10m
  fewer-connections:
    match: { text: "too many connections" }
    action: throttle
    limits: { connections: 2 }
    duration: 1h
  slower:
    match: { text: "too fast" }
    action: throttle
    limits: { message_rate: 5/min, connections: 4 }
    duration: 30m
    recovery: { steps: 2, every: 30m }
  gentle:
    match: { text: "gently" }
    action: throttle
    limits: { connections: 4 }
    duration: 10m
  hopeless:
    match: { text: "will not succeed" }
    action: bounce
`);
  const stop = reply(421, "4.7.0", "stop");
  const pause = reply(421, "4.7.0", "pause");
  const tooMany = reply(421, "4.7.0", "too many connections");
  const tooFast = reply(451, "4.7.0", "too fast");

  it("suspended for the duration, then resumed, with the rule and the reply that caused it", async () => {
    const { clock, start, automation, reported } = automated(rules);
    automation.observe(stop);
    assert.deepEqual(automation.state(), {
      kind: "suspended",
      until: start + HOUR,
      cause: { reason: "automation", rule: "stop", reply: "421 4.7.0 stop" },
    });
    assert.deepEqual(clock.pending, [HOUR]);
    await clock.advance(HOUR);
    assert.deepEqual(reported(), [["destination_suspended", 0, "stop", 60], ["destination_resumed", 60, "stop"]]);
  });

  it("bounce: the recipient bounces, and the destination stays as it was", () => {
    const { automation, reported, kind } = automated(rules);
    assert.deepEqual(automation.observe(reply(554, undefined, "retrying will not succeed")), {
      rule: rules.find((r) => r.name === "hopeless"),
      acted: true,
      bounce: true,
    });
    assert.equal(kind(), "normal");
    assert.deepEqual(reported(), []);
  });

  it("two throttles: each limit the tighter of the two at every moment, until the later one ends", async () => {
    const { clock, automation, reported } = automated(rules);
    automation.observe(tooMany);
    await clock.advance(10 * MIN);
    automation.observe(tooFast);
    await clock.advance(HOUR);
    // "slower" recovers halfway (geometrically) at 40 minutes: to 6 of the own 8 connections, 71 of 1000/min.
    assert.deepEqual(reported(), [
      ["destination_throttled", 0, "fewer-connections", 60, { connections: 2 }, 60],
      ["destination_throttled", 10, "slower", 40, { connections: 2, messageRate: { count: 5, per: "min" } }, 70],
      ["destination_throttled", 40, "slower", 60, { connections: 2, messageRate: { count: 71, per: "min" } }, 70],
      ["destination_throttled", 60, "slower", 70, { connections: 6, messageRate: { count: 71, per: "min" } }, 70],
      ["destination_resumed", 70, "slower"],
    ]);
  });

  it("a throttle no tighter and no longer than the one in force changes nothing; a longer one extends it", async () => {
    const { clock, automation, reported } = automated(rules);
    automation.observe(tooMany);
    automation.observe(tooMany);
    await clock.advance(5 * MIN);
    automation.observe(reply(421, undefined, "gently please"));
    assert.deepEqual(reported().map((c) => c.slice(0, 4)), [["destination_throttled", 0, "fewer-connections", 60]]);
    automation.observe(tooMany);
    await clock.advance(HOUR);
    assert.deepEqual(reported().map((c) => c.slice(0, 4)), [
      ["destination_throttled", 5, "fewer-connections", 65],
      ["destination_resumed", 65, "fewer-connections"],
    ]);
  });

  it("a suspension beats a throttle; when it ends, the throttle's remaining time applies", async () => {
    const { clock, automation, reported } = automated(rules);
    automation.observe(tooMany);
    await clock.advance(5 * MIN);
    automation.observe(pause);
    automation.observe(tooFast); // while suspended: reported once the suspension ends
    await clock.advance(HOUR);
    assert.deepEqual(reported(), [
      ["destination_throttled", 0, "fewer-connections", 60, { connections: 2 }, 60],
      ["destination_suspended", 5, "short-stop", 15],
      ["destination_throttled", 15, "slower", 35, { connections: 2, messageRate: { count: 5, per: "min" } }, 65],
      ["destination_throttled", 35, "slower", 60, { connections: 2, messageRate: { count: 71, per: "min" } }, 65],
      ["destination_throttled", 60, "slower", 65, { connections: 6, messageRate: { count: 71, per: "min" } }, 65],
      ["destination_resumed", 65, "slower"],
    ]);
  });

  it("a throttle that ends while suspended leaves nothing when the suspension ends", async () => {
    const { clock, automation, reported } = automated(rules);
    automation.observe(tooMany);
    automation.observe(stop);
    automation.observe(stop); // no later end: nothing new
    await clock.advance(2 * HOUR);
    assert.deepEqual(reported(), [
      ["destination_throttled", 0, "fewer-connections", 60, { connections: 2 }, 60],
      ["destination_suspended", 0, "stop", 60],
      ["destination_resumed", 60, "stop"],
    ]);
    assert.deepEqual(clock.pending, []);
  });

  it("a suspension while suspended keeps the later end", async () => {
    const { clock, automation, reported } = automated(rules);
    automation.observe(pause);
    await clock.advance(5 * MIN);
    automation.observe(stop);
    automation.observe(pause);
    await clock.advance(HOUR);
    assert.deepEqual(reported(), [
      ["destination_suspended", 0, "short-stop", 10],
      ["destination_suspended", 5, "stop", 65],
      ["destination_resumed", 65, "stop"],
    ]);
  });

  it("the operator resumes: a suspension and throttles the rules made are lifted, reason operator", () => {
    const { automation, reported, kind } = automated(rules);
    automation.observe(tooMany);
    automation.observe(stop);
    automation.resume();
    assert.equal(kind(), "normal", "the throttle is lifted too");
    assert.deepEqual(reported(), [
      ["destination_throttled", 0, "fewer-connections", 60, { connections: 2 }, 60],
      ["destination_suspended", 0, "stop", 60],
      ["destination_resumed", 0, "operator"],
    ]);
  });

  it("stop() cancels the timer", () => {
    const { clock, automation } = automated(rules);
    automation.observe(stop);
    automation.stop();
    assert.deepEqual(clock.pending, []);
  });
});

describe("DestinationAutomation with the shipped rules and the providers' real replies", () => {
  const rules = shippedShaping().rules.automation;

  /** The state after the reply came `times` times, and what observe() said the last time. */
  function after(provider: string | undefined, times: number, ...lines: string[]) {
    const { automation, start } = automated(rules, provider);
    const observations = Array.from({ length: times }, () => automation.observe(wireReply(...lines)));
    return { state: automation.state(), last: observations.at(-1)!, first: observations[0]!, start };
  }

  it("Gmail's 421 4.7.28, twice: 10 messages a minute for 30 minutes", () => {
    const lines = [
      "421-4.7.28 [203.0.113.42      15] Our system has detected an unusual rate of",
      "421-4.7.28 unsolicited mail originating from your IP address. To protect our",
      "421 4.7.28 users from spam, mail sent from your IP address has been temporarily rate limited. - gsmtp",
    ];
    const { state, first, start } = after("google", 2, ...lines);
    assert.equal(first.acted, false, "the threshold is two");
    assert.equal(state.kind, "throttled");
    assert.deepEqual(state.kind === "throttled" && [state.limits, state.until - start, state.ends - start], [
      { messageRate: { count: 10, per: "min" } },
      30 * MIN,
      45 * MIN,
    ]);
  });

  it("Gmail's 421 4.7.0 Try again later, closing connection, three times: one connection, 10 a minute", () => {
    const { state } = after(
      "google",
      3,
      "421 4.7.0 Try again later, closing connection. (EHLO) 5b1f17b1804b1-43cd0b6e5d2si123456f8f.2 - gsmtp",
    );
    assert.deepEqual(state.kind === "throttled" && state.limits, {
      connections: 1,
      connectionRate: { count: 10, per: "min" },
    });
  });

  it("Yahoo's [TSS04]: suspended for two hours", () => {
    const { state, start } = after(
      "yahoo",
      1,
      "421 4.7.0 [TSS04] Messages from 1.2.3.4 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
    );
    assert.deepEqual(state.kind === "suspended" && [state.until - start, state.cause], [2 * HOUR, {
      reason: "automation",
      rule: "yahoo-deferred-volume-or-complaints",
      reply:
        "421 4.7.0 [TSS04] Messages from 1.2.3.4 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
    }]);
  });

  it("Yahoo's 554 [TS03]: the recipient bounces", () => {
    const { state, last } = after(
      "yahoo",
      1,
      "554 5.7.9 [TS03] All messages from 1.2.3.4 will be permanently deferred; Retrying will NOT succeed.",
    );
    assert.deepEqual([last.rule?.name, last.bounce, state.kind], ["yahoo-permanently-deferred", true, "normal"]);
  });

  it("Microsoft's 451 4.7.650 IP reputation: one message a minute on one connection for 90 minutes", () => {
    const { state, start } = after(
      "microsoft",
      1,
      "451 4.7.650 The mail server [1.2.3.4] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775)",
    );
    assert.deepEqual(state.kind === "throttled" && [state.limits, state.until - start], [
      { messageRate: { count: 1, per: "min" }, connections: 1 },
      90 * MIN,
    ]);
  });

  it("Microsoft's 550 5.7.1 S3150 block list, five times: suspended for two hours", () => {
    const lines = [
      "550 5.7.1 Unfortunately, messages from [1.2.3.4] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).",
    ];
    assert.equal(after("microsoft", 4, ...lines).state.kind, "normal");
    const { state, start } = after("microsoft", 5, ...lines);
    assert.deepEqual(state.kind === "suspended" && state.until - start, 2 * HOUR);
  });

  it("Too many connections from any destination, three times: one connection for 30 minutes", () => {
    const { state, start } = after(undefined, 3, "421 4.7.0 mx.example.net Error: too many connections from 1.2.3.4");
    assert.deepEqual(state.kind === "throttled" && [state.limits, state.until - start, state.cause.rule], [
      { connections: 1 },
      30 * MIN,
      "too-many-connections",
    ]);
  });
});

describe("destinationEvent", () => {
  const at = Date.UTC(2026, 4, 18, 12);
  const cause = { reason: "automation", rule: "google-unsolicited-rate", reply: "421 4.7.28 slow" } as const;

  it("a throttle: who caused it, the limits as the file writes them, until when, when it ends", () => {
    const event = destinationEvent(
      {
        type: "destination_throttled",
        at,
        cause,
        limits: { messageRate: { count: 10, per: "min" }, connections: 1 },
        until: at + 30 * MIN,
        ends: at + 45 * MIN,
      },
      "gmail-smtp-in.l.google.com|provider:google",
      "google",
    );
    assert.deepEqual(event, {
      type: "destination_throttled",
      at,
      data: {
        destination: "gmail-smtp-in.l.google.com|provider:google",
        provider: "google",
        reason: "automation",
        rule: "google-unsolicited-rate",
        reply: "421 4.7.28 slow",
        limits: { connections: 1, message_rate: "10/min" },
        until: "2026-05-18T12:30:00.000Z",
        ends: "2026-05-18T12:45:00.000Z",
      },
    });
  });

  it("the operator's suspension without end, and a resumption", () => {
    const suspended = destinationEvent(
      { type: "destination_suspended", at, until: Infinity, cause: { reason: "operator" } },
      "mx.example.org",
      undefined,
    );
    assert.deepEqual(suspended.data, {
      destination: "mx.example.org",
      provider: null,
      reason: "operator",
      rule: null,
      reply: null,
      until: null,
    });
    const resumed = destinationEvent({ type: "destination_resumed", at, cause }, "mx.example.org", undefined);
    assert.deepEqual(resumed.data, {
      destination: "mx.example.org",
      provider: null,
      reason: "automation",
      rule: "google-unsolicited-rate",
      reply: "421 4.7.28 slow",
    });
  });
});
