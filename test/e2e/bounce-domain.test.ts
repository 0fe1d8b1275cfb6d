// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * Mail to RELAY_BOUNCE_DOMAIN, end to end against the real relay: swaks
 * hands in bounces in the shapes Postfix, Gmail, Outlook, Yahoo, Exim and
 * qmail send, and an ARF report, at the VERP return paths a message left with, and they become `bounced` and `complained` events on
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

/** A sample of each sender's shape (test/fixtures/bounces/), the recipient it reports, and what it must become. */
const BOUNCES = [
  {
    sample: "postfix",
    rcpt: "gone@dest.test",
    format: "postfix",
    bounceType: "hard",
    category: "bad-mailbox",
    reply: /^550 5\.1\.1 <gone@dest\.test>: Recipient address rejected: User unknown/,
    suppresses: true,
  },
  {
    sample: "gmail",
    rcpt: "gmail-gone@dest.test",
    format: "gmail",
    bounceType: "hard",
    category: "bad-mailbox",
    reply: /^550 5\.1\.1 The email account that you tried to reach does not exist/,
    suppresses: true,
  },
  {
    sample: "microsoft",
    rcpt: "outlook-full@dest.test",
    format: "microsoft",
    bounceType: "hard",
    category: "quota-issues",
    reply: /^552 5\.2\.2 STOREDRV\.Deliver; mailbox full/,
    suppresses: false,
  },
  {
    sample: "yahoo",
    rcpt: "yahoo-gone@dest.test",
    format: "yahoo",
    bounceType: "hard",
    category: "bad-mailbox",
    reply: /^554 .*This user doesn't have a yahoo\.test account/,
    suppresses: true,
  },
  {
    sample: "exim",
    rcpt: "exim-gone@dest.test",
    format: "exim",
    bounceType: "hard",
    category: "bad-mailbox",
    reply: /^550 5\.1\.1 No such user here/,
    suppresses: true,
  },
  {
    sample: "exim-delayed",
    rcpt: "exim-full@dest.test",
    format: "exim",
    bounceType: "soft",
    category: "quota-issues",
    reply: /^452 4\.2\.2 Mailbox over quota/,
    suppresses: false,
  },
  {
    sample: "qmail",
    rcpt: "qmail-gone@dest.test",
    format: "qmail",
    bounceType: "hard",
    category: "bad-mailbox",
    reply: /^550 5\.1\.1 Sorry, no mailbox here by that name/,
    suppresses: true,
  },
] as const;
const SENT_TO = [...BOUNCES.map((b) => b.rcpt), "annoyed@dest.test"];

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
      // The shipped rules: hard bounces of these categories suppress.
      env: {
        RELAY_BOUNCE_DOMAIN: BOUNCE_DOMAIN,
        RELAY_SUPPRESS_BOUNCE_CATEGORIES: "bad-mailbox,bad-domain,inactive-mailbox",
      },
    });
    const sent = await world.api("POST", "/v1/messages", {
      from: "News <news@example.test>",
      to: SENT_TO,
      subject: "feedback loop",
      text: "x",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    messageId = sent.json.id;
    const got = await world.destination.waitFor((m) =>
      m.filter((r) => r.data.includes("Subject: feedback loop")).length === SENT_TO.length
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

  for (const b of BOUNCES) {
    it(`${b.sample}: a bounce at a recipient's VERP address is a ${b.bounceType} bounce for that message and recipient`, async () => {
      const returnPath = returnPaths.get(b.rcpt)!;
      const out = await deliverSample(b.sample, returnPath, b.rcpt, returnPath);
      assert.match(out, /^<- +250 2\.0\.0 OK read as feedback, not queued$/m);
      const bounced = (await messageEvents()).filter((e) => e.type === "bounced" && e.recipient === b.rcpt);
      assert.equal(bounced.length, 1, JSON.stringify(bounced));
      assert.equal(bounced[0].bounce_type, b.bounceType);
      assert.equal(bounced[0].category, b.category);
      assert.equal(bounced[0].format, b.format);
      assert.match(bounced[0].reply, b.reply);
      assert.equal(
        await nextStatus(b.rcpt),
        b.suppresses ? "suppressed" : "queued",
        "only a hard bounce of a category RELAY_SUPPRESS_BOUNCE_CATEGORIES names suppresses",
      );
    });
  }

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
