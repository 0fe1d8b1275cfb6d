/**
 * Each destination's deferrals follow its own retry schedule from the
 * shaping rules: an operator's provider rule and domain rule set `retry`,
 * RELAY_RETRY_SCHEDULE sets the default level's; and a recipient's first
 * greylisting reply is retried after RELAY_GREYLIST_RETRY, not on the
 * schedule. Read from the deferred events: the distance from the event to
 * its next_attempt_at is the step plus its jitter (0-10%), minus the moment
 * it took to write the outcome down.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

const M = 60_000;
const H = 3_600_000;

const SHAPING = `providers:
  acme:
    mx_suffixes: [acme.test]
    retry: [45m]
domains:
  own.test:
    retry: [20m]
`;

describe("retry schedules per destination, and the quick retry after greylisting", () => {
  const dir = mkdtempSync(join(tmpdir(), "relay-shaping-retry-"));
  let w: World;
  before(async () => {
    const file = join(dir, "shaping.yaml");
    writeFileSync(file, SHAPING);
    w = await startWorld({
      zone: {
        ...defaultZone(),
        "hosted.test": { MX: [{ preference: 10, exchange: "mx.acme.test" }] },
        "mx.acme.test": { A: ["127.0.0.1"] },
        // The same MX site as dest.test: only its domain rule sets it apart.
        "own.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
      },
      env: { RELAY_SHAPING_FILE: file, RELAY_RETRY_SCHEDULE: "3h", RELAY_GREYLIST_RETRY: "1s" },
    });
  });
  after(async () => {
    await w?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The first deferred event of `recipient` in message `id`, and how long after it the next attempt is due. */
  async function deferral(id: string, recipient: string) {
    const event = await w.waitForEvent((e) =>
      e.type === "deferred" && e.message_id === id && e.recipient === recipient
    );
    return { event, wait: Date.parse(event.next_attempt_at) - Date.parse(event.at) };
  }

  function assertStep(wait: number, step: number, what: string): void {
    assert.ok(
      wait > 0.9 * step && wait <= 1.1 * step,
      `${what}: next attempt ${wait} ms later; the step is ${step} ms`,
    );
  }

  it("a provider rule, a domain rule and the default level each defer on their own schedule", async () => {
    const to = ["tempfail@hosted.test", "tempfail@own.test", "tempfail@dest.test"];
    const sent = await w.api("POST", "/v1/messages", { from: "a@sender.test", to, subject: "later", text: "x" });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const id = sent.json.id;
    assertStep((await deferral(id, "tempfail@hosted.test")).wait, 45 * M, "the acme provider's MX");
    assertStep((await deferral(id, "tempfail@own.test")).wait, 20 * M, "own.test's domain rule");
    assertStep((await deferral(id, "tempfail@dest.test")).wait, 3 * H, "the default level (RELAY_RETRY_SCHEDULE)");

    // The queue says the same.
    const view = await w.api("GET", `/v1/messages/${id}`);
    const hosted = view.json.recipients.find((r: { email: string }) => r.email === "tempfail@hosted.test");
    assert.equal(hosted.state, "deferred");
    assert.equal(hosted.next_attempt_at, (await deferral(id, "tempfail@hosted.test")).event.next_attempt_at);
  });

  it("a first greylisting reply is retried after RELAY_GREYLIST_RETRY, and delivered then", async () => {
    const sent = await w.api("POST", "/v1/messages", {
      from: "a@sender.test",
      to: ["greylist@dest.test"],
      subject: "greylisted",
      text: "x",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const id = sent.json.id;
    const { event, wait } = await deferral(id, "greylist@dest.test");
    assert.match(event.reply, /^450 .*greylisted/);
    assert.equal(event.category, "greylisting");
    assert.ok(wait <= 1100, `next attempt ${wait} ms later: RELAY_GREYLIST_RETRY is 1s, the schedule 3h`);
    const delivered = await w.waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    assert.equal(delivered.attempt, 2);
  });
});
