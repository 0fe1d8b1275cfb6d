// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * RELAY_MILTERS end to end, the built relay with real scanners on loopback:
 * rspamd (its milter proxy) refuses GTUBE over SMTP and HTTP and adds its
 * X-Spam-* fields to a clean message, which our DKIM signature still covers
 * (dkimpy verifies it at the destination); a scripted milter shows every
 * other action (discard, quarantine, each modification, reply codes,
 * tempfail) and the defaults of a milter that is down or never answers.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Action, Reply } from "../../src/milter/constants.ts";
import { type MilterPeer, replyPacket, type SeenCommand, startMilterPeer } from "../fixtures/milter-peer.ts";
import { dkimpyMissing, dkimpyVerifyAll } from "../helpers/dkimpy.ts";
import { freePort } from "../helpers/relay-process.ts";
import { type Rspamd, rspamdMissing, startRspamd } from "../helpers/rspamd.ts";
import { type ClamAV, clamavMissing, EICAR, startClamAV } from "../helpers/clamav.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";
import { prng } from "../helpers/prng.ts";

const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const dkimpyUnavailable = dkimpyMissing(["dkim"], "python3-dkim");
const ALL_ACTIONS = Object.values(Action).reduce((all, flag) => all | flag, 0);

const letter = (code: number) => String.fromCharCode(code);

describe("content scanning with rspamd", { skip: rspamdMissing }, () => {
  let rspamd: Rspamd;
  let world: World;
  let zone: Record<string, string>;
  before(async () => {
    rspamd = await startRspamd();
    world = await startWorld({ env: { RELAY_MILTERS: `${rspamd.address} default=tempfail` } });
    const records = await world.verifySendingDomain("sender.test");
    zone = Object.fromEntries(records.filter((r) => r.purpose === "dkim").map((r) => [r.name, r.value]));
  });
  after(async () => {
    await world?.close();
    await rspamd?.close();
  });

  it("refuses GTUBE over SMTP with rspamd's 554 and over HTTP with 422; nothing is queued, each is a rejected event", async () => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "alice@sender.test",
      ["bob@dest.test"],
      `From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: spam\r\n\r\n${GTUBE}\r\n`,
    );
    assert.match(replies.at(-2)!, /^554 5\.7\.1 Gtube pattern/m, rspamd.log().slice(-2000));
    const http = await world.api("POST", "/v1/messages", {
      from: "alice@sender.test",
      to: ["carol@dest.test"],
      subject: "spam",
      text: GTUBE,
    });
    assert.equal(http.status, 422, JSON.stringify(http.json));
    assert.equal(http.json.title, "Message refused by a content scanner");
    assert.match(http.json.detail, /^554 5\.7\.1 Gtube pattern/);
    const rejected = await world.waitForEvent((e) => e.type === "rejected" && e.message_id === http.json.id);
    assert.equal(rejected.recipient, "carol@dest.test");
    assert.equal(rejected.action, "refused");
    assert.equal(rejected.milter, rspamd.address);
    assert.equal(rejected.scan[0].verdict, "replycode");
    const events = await world.events();
    assert.equal(events.filter((e) => e.type === "rejected").length, 2);
    assert.equal(events.filter((e) => e.type === "received").length, 0);
    assert.equal(world.destination.messages.length, 0);
  });

  it("delivers a clean message with rspamd's X-Spam-* fields below our DKIM signature, which dkimpy verifies", async () => {
    const sent = await world.api("POST", "/v1/messages", {
      from: "Alice <alice@sender.test>",
      to: ["dave@dest.test"],
      subject: "Lunch",
      text: "Shall we have lunch at noon on Thursday? The usual place.",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const received = await world.waitForEvent((e) => e.type === "received" && e.message_id === sent.json.id);
    assert.deepEqual(received.scan.map((s: any) => [s.milter, s.verdict]), [[rspamd.address, "accept"]]);
    const [message] = await world.destination.waitFor(1);
    assert.match(message!.data, /^X-Spam-Status: No, score=/m);
    assert.match(message!.data, /^X-Spamd-Result: default: False/m);
    const signatureAt = message!.data.indexOf("DKIM-Signature:");
    assert.ok(signatureAt >= 0 && signatureAt < message!.data.indexOf("X-Spam-Status:"), message!.data);
    if (!dkimpyUnavailable) assert.deepEqual(await dkimpyVerifyAll([message!.bytes], zone), [[true]]);
  });
});

describe("content scanning with ClamAV after rspamd", { skip: rspamdMissing ?? clamavMissing }, () => {
  let rspamd: Rspamd;
  let clamav: ClamAV;
  let world: World;
  const attachment = (content: string) => ({
    from: "a@sender.test",
    to: ["ivan@dest.test"],
    subject: "the report",
    text: "Here is the file you asked for.",
    attachments: [{ filename: "report.com", content: Buffer.from(content).toString("base64") }],
  });
  before(async () => {
    [rspamd, clamav] = await Promise.all([startRspamd(), startClamAV()]);
    world = await startWorld({
      env: { RELAY_MILTERS: `${rspamd.address}, ${clamav.address}`, RELAY_SENDER_POLICY: "any" },
    });
  });
  after(async () => {
    await world?.close();
    await Promise.all([rspamd?.close(), clamav?.stop()]);
  });

  it("refuses a message carrying EICAR as an attachment, and delivers a clean one marked by both scanners", async () => {
    const infected = await world.api("POST", "/v1/messages", attachment(EICAR));
    assert.equal(infected.status, 422, `${JSON.stringify(infected.json)}\n${clamav.log().slice(-2000)}`);
    assert.equal(infected.json.detail, "550 5.7.1 message refused by a content scanner");
    const rejected = await world.waitForEvent((e) => e.type === "rejected" && e.message_id === infected.json.id);
    assert.equal(rejected.milter, clamav.address);
    assert.deepEqual(rejected.scan.map((s: any) => s.verdict), ["accept", "reject"]);

    const clean = await world.api("POST", "/v1/messages", attachment("an ordinary report, nothing to see"));
    assert.equal(clean.status, 202, JSON.stringify(clean.json));
    const [message] = await world.destination.waitFor(1);
    assert.match(message!.data, /^X-Spam-Status: No/m);
    assert.match(message!.data, /^X-Virus-Status: Clean\r$/m);
    assert.equal(world.destination.messages.length, 1);
  });
});

/** The subject of the message on this connection, from the header the milter was sent. */
function subjectOf(command: SeenCommand, seen: readonly SeenCommand[]): string | undefined {
  for (let i = seen.length - 1; i >= 0; i--) {
    const c = seen[i]!;
    if (c.connection !== command.connection) continue;
    if (c.letter === "M") return undefined;
    if (c.letter === "L" && c.strings[0]?.toLowerCase() === "subject") return c.strings[1]?.trim();
  }
  return undefined;
}

/** What the scripted milter does at end of message, by subject. */
function endOfMessage(subject: string | undefined): Uint8Array[] | "silent" | undefined {
  const cont = replyPacket(letter(Reply.CONTINUE));
  switch (subject) {
    case "discard me":
      return [replyPacket(letter(Reply.DISCARD))];
    case "hold me":
      return [replyPacket(letter(Reply.QUARANTINE), (w) => w.string("looks odd")), cont];
    case "refuse me":
      return [replyPacket(letter(Reply.REPLYCODE), (w) => w.string("550 5.7.0 refused by the test milter"))];
    case "later":
      return [replyPacket(letter(Reply.TEMPFAIL))];
    case "hang":
      return "silent";
    case "edit me":
      return [
        replyPacket(letter(Reply.ADDHEADER), (w) => w.string("X-Scanned").string("yes")),
        replyPacket(letter(Reply.CHGHEADER), (w) => w.uint32(1).string("Subject").string("edited")),
        replyPacket(letter(Reply.ADDRCPT), (w) => w.string("<added@dest.test>")),
        replyPacket(letter(Reply.DELRCPT), (w) => w.string("<dropped@dest.test>")),
        replyPacket(letter(Reply.CHGFROM), (w) => w.string("<changed@sender.test>")),
        replyPacket(letter(Reply.REPLBODY), (w) => w.bytes(new TextEncoder().encode("replaced\nbody\n"))),
        cont,
      ];
    default:
      return undefined;
  }
}

describe("content scanning: every action of a scripted milter, and the defaults", () => {
  let peer: MilterPeer;
  let world: World;
  let down: string;
  const send = (subject: string, to = ["erin@dest.test"]) =>
    world.api("POST", "/v1/messages", { from: "a@sender.test", to, subject, text: "hello" });
  before(async () => {
    peer = await startMilterPeer({
      actions: ALL_ACTIONS,
      script: (command, seen) => (command.letter === "E" ? endOfMessage(subjectOf(command, seen)) : undefined),
    });
    down = `inet:127.0.0.1:${await freePort()}`;
    world = await startWorld({
      env: {
        RELAY_MILTERS:
          `${peer.address} command_timeout=1s message_timeout=5s, ${down} default=accept connect_timeout=1s`,
        RELAY_SENDER_POLICY: "any",
      },
    });
  });
  after(async () => {
    await world?.close();
    await peer?.close();
  });

  it("applies every modification, before signing, and records both milters' parts", async () => {
    const sent = await send("edit me", ["keep@dest.test", "dropped@dest.test"]);
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const [message] = await world.destination.waitFor(1);
    assert.equal(message!.mailFrom, "changed@sender.test");
    assert.deepEqual(message!.recipients.sort(), ["added@dest.test", "keep@dest.test"]);
    assert.match(message!.data, /^X-Scanned: yes\r$/m);
    assert.match(message!.data, /^Subject: edited\r$/m);
    assert.ok(message!.data.endsWith("\r\n\r\nreplaced\r\nbody\r\n"), JSON.stringify(message!.data.slice(-40)));
    const received = (await world.events()).filter((e) => e.type === "received" && e.message_id === sent.json.id);
    assert.deepEqual(received.map((e) => e.recipient).sort(), ["added@dest.test", "keep@dest.test"]);
    const [scanned, defaulted] = received[0].scan;
    assert.deepEqual(scanned.modifications, [
      "add-header",
      "change-header",
      "add-recipient",
      "delete-recipient",
      "change-sender",
      "replace-body",
    ]);
    assert.equal(defaulted.milter, down);
    assert.equal(defaulted.verdict, "default");
    assert.equal(defaulted.default, "accept");
    assert.match(defaulted.failure, /cannot connect/);
  });

  it("discard: accepted, never delivered, a rejected event says discarded", async () => {
    const sent = await send("discard me");
    assert.equal(sent.status, 202);
    const rejected = await world.waitForEvent((e) => e.type === "rejected" && e.message_id === sent.json.id);
    assert.equal(rejected.action, "discarded");
    assert.ok(!(await world.events()).some((e) => e.type === "received" && e.message_id === sent.json.id));
  });

  it("quarantine: held in the queue, sent once released", async () => {
    const sent = await send("hold me", ["frank@dest.test"]);
    assert.equal(sent.status, 202);
    assert.deepEqual(sent.json.recipients, [{ email: "frank@dest.test", status: "held" }]);
    const held = await world.waitForEvent((e) => e.type === "held" && e.message_id === sent.json.id);
    assert.equal(held.quarantine, "looks odd");
    const view = await world.api("GET", `/v1/messages/${sent.json.id}`);
    assert.equal(view.json.recipients[0].state, "held");
    const before = world.destination.messages.length;
    const released = await world.api("POST", `/v1/messages/${sent.json.id}/release`);
    assert.equal(released.status, 200, JSON.stringify(released.json));
    await world.destination.waitFor(before + 1);
    assert.deepEqual(world.destination.messages.at(-1)!.recipients, ["frank@dest.test"]);
  });

  it("a milter's reply code is the SMTP reply; tempfail is 451 over SMTP and 503 over HTTP", async () => {
    const refused = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["g@dest.test"],
      "Subject: refuse me\r\n\r\nx\r\n",
    );
    assert.match(refused.at(-2)!, /^550 5\.7\.0 refused by the test milter/);
    const later = await sendMail(world.relay.smtpPort, "a@sender.test", ["g@dest.test"], "Subject: later\r\n\r\nx\r\n");
    assert.match(later.at(-2)!, /^451 4\.7\.1 /);
    const http = await send("later");
    assert.equal(http.status, 503);
    assert.equal(http.json.title, "Content scanner asks to try again later");
  });

  it("a milter that never answers gets its default (tempfail) within its timeout", async () => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["h@dest.test"],
      "Subject: hang\r\n\r\nx\r\n",
    );
    assert.match(replies.at(-2)!, /^451 4\.7\.1 content scanner unavailable/);
    const rejected = (await world.events()).filter((e) => e.type === "rejected" && e.action === "tempfailed");
    assert.ok(rejected.some((e) => /did not answer/.test(e.scan[0].failure)), JSON.stringify(rejected));
  });
});

describe("content scanning: a milter that speaks garbage never hangs or crashes the relay", () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const random = prng(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
  const header = (length: number, code: number) => {
    const packet = new Uint8Array(5);
    new DataView(packet.buffer).setUint32(0, length >>> 0);
    packet[4] = code;
    return packet;
  };
  /** What the fuzzing milter answers a command with: valid, broken, truncated, silent or gone. */
  const answers: (() => Uint8Array[] | "silent" | "close" | undefined)[] = [
    () => undefined,
    () => undefined,
    () => [bytes(1 + Math.floor(random() * 64))],
    () => [header(1 + Math.floor(random() * 100), pick([...Object.values(Reply)]))],
    () => [header(0xffffffff, Reply.CONTINUE)],
    () => [header(0, 0)],
    () => [replyPacket(letter(pick([...Object.values(Reply)])), (w) => w.bytes(bytes(Math.floor(random() * 20))))],
    () => [replyPacket(letter(Reply.REPLYCODE), (w) => w.string(`${pick(["250", "999", "45", "550 5.7.1 x"])}`))],
    () => [replyPacket(letter(Reply.ADDHEADER), (w) => w.string("Bad Name").string("v"))],
    () => "close",
    () => "silent",
  ];
  let peer: MilterPeer;
  let world: World;
  before(async () => {
    peer = await startMilterPeer({
      actions: ALL_ACTIONS,
      script: (command) => (command.letter === "O" && random() < 0.7 ? undefined : pick(answers)()),
    });
    world = await startWorld({
      env: { RELAY_MILTERS: `${peer.address} command_timeout=300ms message_timeout=1s connect_timeout=1s` },
    });
  });
  after(async () => {
    await world?.close();
    await peer?.close();
  });

  it(`answers every message with 250 or the default 451, and stays up (FUZZ_SEED=${seed})`, async () => {
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const replies = await sendMail(
        world.relay.smtpPort,
        "a@sender.test",
        [`fuzz${i}@dest.test`],
        `Subject: fuzz ${i}\r\n\r\n${"x".repeat(i * 37)}\r\n`,
      );
      const final = replies.at(-2)!;
      assert.match(final, /^(250 |451 4\.7\.1 |5\d\d )/, `message ${i}: ${final} (FUZZ_SEED=${seed})`);
      const code = final.slice(0, 3);
      outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
    }
    const health = await fetch(world.relay.url("/healthz"));
    assert.equal(health.status, 200);
    assert.ok((outcomes.get("451") ?? 0) > 0, `the garbage was noticed: ${JSON.stringify([...outcomes])}`);
  });
});
