/**
 * Response-driven automation against simulated providers: a destination
 * whose MX host is the provider's name answers with the provider's own
 * throttling and blocking texts, and counts at its end what it is sent.
 * Shown: Gmail's 421 4.7.28 slows the destination to the rule's rate and it
 * recovers by itself after the duration; Microsoft's 5.7.606 (banned IP)
 * suspends it, nothing is attempted until the suspension ends, and what was
 * held goes then without an attempt counted for the wait; Yahoo's [TS03]
 * bounces the recipient at once. Each change of state is an event with the
 * reply that caused it. The rules are the shipped ones, with an operator
 * file that shortens their durations to seconds.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

const dir = mkdtempSync(join(tmpdir(), "relay-automation-"));
/** The shipped rules of these names, as they are but for their durations (an automation rule is replaced whole). */
const RULES = `automation:
  google-unsolicited-rate:
    provider: google
    match: { code: 421, enhanced: 4.7.28 }
    threshold: { matches: 2, within: 1h }
    action: throttle
    limits: { message_rate: 30/min }
    duration: 4s
    recovery: { steps: 1, every: 1s }
  microsoft-banned-ip:
    provider: microsoft
    match: { enhanced: 5.7.606 }
    action: suspend
    duration: 4s
`;

const GOOGLE_MX = "gmail-smtp-in.l.google.com";
const MICROSOFT_MX = "hosted-test.mail.protection.outlook.com";
const YAHOO_MX = "mta5.am0.yahoodns.net";

const GOOGLE_421 = "421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP " +
  "address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.";
const MICROSOFT_BANNED = "550 5.7.606 Access denied, banned sending IP [127.0.0.1]. To request removal from this " +
  "list please visit https://sender.office.com/ and follow the directions.";
const YAHOO_TS03 = "421 4.7.0 [TS03] All messages from 127.0.0.1 will be permanently deferred; Retrying will NOT " +
  "succeed. See https://senders.yahooinc.com/smtp-error-codes";

const worlds: World[] = [];
after(async () => {
  for (const w of worlds) await w.close();
});

/** A world whose destination answers `reply(to, n)` to the n-th RCPT (from 1), or as usual when it returns undefined. */
async function provider(mx: string, domain: string, reply: (to: string, n: number) => string | undefined) {
  const rules = join(dir, `${domain}.yaml`);
  writeFileSync(rules, RULES);
  let n = 0;
  const rcpts: { to: string; at: number; answer: string }[] = [];
  const w = await startWorld({
    zone: { ...defaultZone(), [domain]: { MX: [{ preference: 10, exchange: mx }] }, [mx]: { A: ["127.0.0.1"] } },
    env: { RELAY_BOUNCE_DOMAIN: "bounces.sender.test", RELAY_SHAPING_FILE: rules },
    destination: {
      rcptReply: (to) => {
        const answer = reply(to, ++n);
        rcpts.push({ to, at: Date.now(), answer: answer ?? "250" });
        return answer;
      },
    },
  });
  worlds.push(w);
  return { w, rcpts };
}

async function send(w: World, to: string[], subject: string): Promise<string> {
  const sent = await w.api("POST", "/v1/messages", { from: "a@sender.test", to, subject, text: "x" });
  assert.equal(sent.status, 202, JSON.stringify(sent.json));
  return sent.json.id;
}

describe("automation from the providers' replies", () => {
  it("Gmail's 421 4.7.28 throttles the destination to the rule's rate, and it recovers by itself", {
    timeout: 120_000,
  }, async () => {
    const { w, rcpts } = await provider(GOOGLE_MX, "gmail.test", (_to, n) => (n <= 2 ? GOOGLE_421 : undefined));
    await send(w, ["slow1@gmail.test", "slow2@gmail.test"], "the two that are refused");
    const throttled = await w.waitForEvent((e) => e.type === "destination_throttled", 30_000);
    assert.equal(throttled.rule, "google-unsolicited-rate");
    assert.equal(throttled.provider, "google");
    assert.match(throttled.reply, /^421 4\.7\.28 Our system has detected/);
    assert.deepEqual(throttled.limits, { message_rate: "30/min" });
    const queue = await w.api("GET", "/v1/queue");
    const google = queue.json.destinations.find((d: { provider: string }) => d.provider === "google");
    assert.equal(google.state, "throttled", JSON.stringify(google));
    assert.deepEqual([google.automation.rule, google.automation.limits], ["google-unsolicited-rate", {
      message_rate: "30/min",
    }]);
    const during = await send(w, ["t1@gmail.test", "t2@gmail.test", "t3@gmail.test"], "while throttled");
    const resumed = await w.waitForEvent((e) => e.type === "destination_resumed", 30_000);
    assert.equal(resumed.rule, "google-unsolicited-rate");
    await w.waitForEvent((e) => e.type === "delivered" && e.message_id === during && e.recipient === "t3@gmail.test");

    // While throttled, the transactions sent go at the rule's 30/min: 2 s apart (less the slack between the ends).
    const end = Date.parse(resumed.at);
    const throttledAt = rcpts.filter((r) => r.answer === "250" && r.at < end).map((r) => r.at);
    assert.ok(throttledAt.length >= 2, `${throttledAt.length} accepted while throttled`);
    for (let i = 1; i < throttledAt.length; i++) {
      const gap = throttledAt[i]! - throttledAt[i - 1]!;
      assert.ok(gap >= 2000 - 150, `${gap} ms apart`);
    }
    // Once it is over, mail goes at the destination's own pace again.
    const idAfter = await send(w, ["late1@gmail.test", "late2@gmail.test", "late3@gmail.test"], "after");
    await w.waitForEvent((e) =>
      e.type === "delivered" && e.message_id === idAfter && e.recipient === "late3@gmail.test"
    );
    const late = rcpts.filter((r) => r.to.startsWith("late")).map((r) => r.at);
    assert.ok(late.at(-1)! - late[0]! < 2000, `the three went within ${late.at(-1)! - late[0]!} ms`);
  });

  it("Microsoft's 5.7.606 suspends the destination: nothing is attempted until it ends, then the held mail goes", {
    timeout: 120_000,
  }, async () => {
    const { w, rcpts } = await provider(
      MICROSOFT_MX,
      "outlook.test",
      (_to, n) => (n === 1 ? MICROSOFT_BANNED : undefined),
    );
    const first = await send(w, ["first@outlook.test"], "banned");
    const suspended = await w.waitForEvent((e) => e.type === "destination_suspended", 30_000);
    assert.equal(suspended.rule, "microsoft-banned-ip");
    assert.match(suspended.reply, /^550 5\.7\.606/);
    const queue = await w.api("GET", "/v1/queue");
    const microsoft = queue.json.destinations.find((d: { provider: string }) => d.provider === "microsoft");
    assert.deepEqual([microsoft.state, microsoft.automation.rule], ["suspended", "microsoft-banned-ip"]);
    const held = await send(w, ["held1@outlook.test", "held2@outlook.test"], "held");
    const resumed = await w.waitForEvent((e) => e.type === "destination_resumed", 30_000);
    await w.waitForEvent((e) => e.type === "delivered" && e.recipient === "held2@outlook.test", 30_000);

    const during = rcpts.filter((r) =>
      r.to.endsWith("@outlook.test") && r.at > Date.parse(suspended.at) && r.at < Date.parse(resumed.at)
    );
    assert.deepEqual(during, [], "nothing attempted while suspended");
    const view = await w.api("GET", `/v1/messages/${held}`);
    for (const r of view.json.recipients) {
      assert.equal(r.state, "delivered");
      assert.equal(r.attempts, 1, "waiting out the suspension is no attempt");
    }
    const bounced = await w.api("GET", `/v1/messages/${first}`);
    assert.equal(bounced.json.recipients[0].state, "bounced", "the 5xx itself bounces its recipient");
  });

  it("Yahoo's [TS03] bounces the recipient at once instead of retrying", { timeout: 60_000 }, async () => {
    const { w } = await provider(YAHOO_MX, "yahoo.test", () => YAHOO_TS03);
    const id = await send(w, ["gone@yahoo.test"], "ts03");
    const bounced = await w.waitForEvent((e) => e.type === "bounced" && e.message_id === id, 30_000);
    assert.match(bounced.reply, /\[TS03\]/);
    const view = await w.api("GET", `/v1/messages/${id}`);
    assert.equal(view.json.recipients[0].attempts, 1);
  });
});
