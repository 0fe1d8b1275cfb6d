// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * Mail to RELAY_BOUNCE_DOMAIN, end to end against the real relay: swaks
 * hands in a Postfix-shaped DSN and an ARF report at the VERP return paths a
 * message left with, and they become `bounced` and `complained` events on
 * that message's recipients; forged ones (a tag our key did not make, the
 * untagged form, a message that is no report at all) change nothing and are
 * never relayed to the bounce domain's MX (the scripted destination here).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { bounceSample } from "../helpers/bounce-samples.ts";
import { swaks, swaksMissing } from "../helpers/peers.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

const BOUNCE_DOMAIN = "bounces.example.test";

describe("mail to the bounce domain is read, not relayed", { skip: swaksMissing }, () => {
  let world: World;
  let dir: string;
  let messageId: string;
  let samples = 0;
  /** The VERP return path each recipient's copy left with. */
  const returnPaths = new Map<string, string>();

  /** Hand a sample from test/fixtures/bounces/ to the relay with swaks, from the null sender. */
  async function deliverSample(name: string, to: string, rcpt: string, returnPath: string): Promise<string> {
    const file = join(dir, `${name}-${++samples}.eml`);
    writeFileSync(file, bounceSample(name, rcpt, returnPath));
    const run = await swaks(world.relay.smtpPort, ["--from", "<>", "--to", to, "--data", `@${file}`]);
    assert.equal(run.code, 0, `swaks failed:\n${run.stdout}\n${run.stderr}`);
    return run.stdout;
  }

  /** What becomes of the next message to `address`: queued, or suppressed (accepted, never sent). */
  const nextStatus = async (address: string): Promise<string> => {
    const sent = await world.api("POST", "/v1/messages", {
      from: "News <news@example.test>",
      to: [address],
      subject: "after the feedback",
      text: "x",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    return sent.json.recipients[0].status;
  };

  const messageEvents = async () => (await world.api("GET", `/v1/messages/${messageId}`)).json.events as any[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "relay-bounces-"));
    world = await startWorld({
      zone: {
        ...defaultZone(),
        "example.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
        // Were the relay to pass mail for the bounce domain on, the scripted destination would get it.
        [BOUNCE_DOMAIN]: { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
      },
      env: { RELAY_BOUNCE_DOMAIN: BOUNCE_DOMAIN },
    });
    const sent = await world.api("POST", "/v1/messages", {
      from: "News <news@example.test>",
      to: ["gone@dest.test", "annoyed@dest.test"],
      subject: "feedback loop",
      text: "x",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    messageId = sent.json.id;
    const got = await world.destination.waitFor((m) =>
      m.filter((r) => r.data.includes("Subject: feedback loop")).length === 2
    );
    for (const r of got.filter((r) => r.data.includes("Subject: feedback loop"))) {
      returnPaths.set(r.recipients[0]!, r.mailFrom);
    }
  });
  after(async () => {
    await world?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("each recipient's return path carries a tag (a keyed hash) after the message and recipient ids", () => {
    for (const address of returnPaths.values()) {
      assert.match(address, new RegExp(`^b\\.${messageId}\\.[0-9a-z]+\\.[a-z2-7]{10}@bounces\\.example\\.test$`));
      assert.ok(address.split("@")[0]!.length <= 64);
    }
  });

  it("a DSN at a recipient's VERP address is a hard bounce for that message and recipient", async () => {
    const out = await deliverSample(
      "postfix",
      returnPaths.get("gone@dest.test")!,
      "gone@dest.test",
      returnPaths.get("gone@dest.test")!,
    );
    assert.match(out, /^<- +250 2\.0\.0 OK read as feedback, not queued$/m);
    const events = await messageEvents();
    const bounced = events.filter((e) => e.type === "bounced");
    assert.equal(bounced.length, 1, JSON.stringify(events));
    assert.equal(bounced[0].recipient, "gone@dest.test");
    assert.equal(bounced[0].bounce_type, "hard");
    assert.equal(bounced[0].category, "bad-mailbox");
    assert.equal(bounced[0].format, "postfix");
    assert.equal(bounced[0].remote_mta, "inbox.dest.test");
    assert.match(bounced[0].reply, /^550 5\.1\.1 <gone@dest\.test>: Recipient address rejected: User unknown/);
    assert.equal(await nextStatus("gone@dest.test"), "suppressed", "the hard bounce suppressed the address");
  });

  it("an ARF report at a recipient's VERP address is a complaint for that message and recipient", async () => {
    const returnPath = returnPaths.get("annoyed@dest.test")!;
    await deliverSample("arf", returnPath, "annoyed@dest.test", returnPath);
    const complained = (await messageEvents()).filter((e) => e.type === "complained");
    assert.equal(complained.length, 1);
    assert.equal(complained[0].recipient, "annoyed@dest.test");
    assert.equal(complained[0].feedback_type, "abuse");
    assert.equal(complained[0].user_agent, "ISP-FBL/1.0");
    assert.equal(await nextStatus("annoyed@dest.test"), "suppressed", "the complaint suppressed the address");
  });

  it("forged feedback and anything else changes nothing and is not relayed", async () => {
    const before = await world.events();
    const genuine = returnPaths.get("annoyed@dest.test")!;
    const local = genuine.split("@")[0]!;
    const tag = local.slice(local.lastIndexOf(".") + 1);
    const forgedTag = genuine.replace(`.${tag}@`, `.${tag.startsWith("a") ? "b" : "a"}${tag.slice(1)}@`);
    const untagged = genuine.replace(`.${tag}@`, "@");
    for (const to of [forgedTag, untagged]) {
      const out = await deliverSample("postfix", to, "annoyed@dest.test", to);
      assert.match(out, /^<- +250 /m);
    }
    await deliverSample("arf", forgedTag, "annoyed@dest.test", forgedTag);
    await deliverSample("plain", `postmaster@${BOUNCE_DOMAIN}`, "annoyed@dest.test", genuine);
    await deliverSample("autoreply-ooo", genuine, "annoyed@dest.test", genuine);
    assert.deepEqual(await world.events(), before, "no event: nothing queued, bounced or complained");

    // A message sent after them arrives; had any been queued, it would have gone before or with it.
    const later = await world.api("POST", "/v1/messages", {
      from: "a@sender.test",
      to: ["later@dest.test"],
      subject: "later",
      text: "x",
    });
    assert.equal(later.status, 202);
    await world.destination.waitFor((m) => m.some((r) => r.recipients.includes("later@dest.test")));
    const relayed = world.destination.messages.filter((r) => r.recipients.some((a) => a.endsWith(`@${BOUNCE_DOMAIN}`)));
    assert.deepEqual(relayed, []);
  });
});
