/**
 * MilterSession against a scripted milter on loopback (test/fixtures/milter-peer.ts):
 * negotiation, the order of events and their macros, each verdict at each
 * step, each modification, the skip and no-reply flags, and the ways a
 * milter fails (too slow, hanging up, garbage).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Action, ALL_ACTIONS, Family, MacroStage, OFFERED_PROTOCOL, Protocol } from "../../src/milter/constants.ts";
import { openMilter, parseMilterEndpoint } from "../../src/milter/endpoint.ts";
import {
  MilterConnectionError,
  MilterError,
  MilterProtocolError,
  MilterTimeoutError,
} from "../../src/milter/errors.ts";
import { commonMacros } from "../../src/milter/macros.ts";
import type { MilterMessage, MilterSession, MilterSessionOptions } from "../../src/milter/session.ts";
import { type MilterPeer, type MilterPeerOptions, replyPacket, startMilterPeer } from "../fixtures/milter-peer.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { waitUntil } from "../helpers/wait-until.ts";

const CONTENT = new TextEncoder().encode(
  "From: a@example.com\r\nSubject:  two spaces\r\nX-Folded: one\r\n\ttwo\r\n\r\nHello\r\n",
);
const MESSAGE: MilterMessage = {
  sender: { address: "a@example.com", args: ["SIZE=100"] },
  recipients: [{ address: "b@example.org" }, { address: "c@example.org" }],
  content: CONTENT,
  macros: commonMacros({ hostname: "relay.test", daemonName: "smtp", queueId: "Q1", authenticatedAs: "alice" }),
};

const peers: MilterPeer[] = [];
const sessions: MilterSession[] = [];
after(async () => {
  await Promise.all(sessions.map((s) => s.close()));
  await Promise.all(peers.map((p) => p.close()));
});

async function start(peerOptions: MilterPeerOptions, sessionOptions: MilterSessionOptions = {}) {
  const peer = await startMilterPeer(peerOptions);
  peers.push(peer);
  const session = await openMilter(parseMilterEndpoint(peer.address), sessionOptions);
  sessions.push(session);
  return { peer, session };
}

/** CONNECT and HELO, then the message. */
async function converse(session: MilterSession, message: MilterMessage = MESSAGE) {
  await session.connect(
    { hostname: "client.example", family: Family.INET, port: 4000, address: "192.0.2.7" },
    message.macros?.connect,
  );
  await session.helo("client.example");
  return session.message(message);
}

const commandsOf = (peer: MilterPeer, letter: string) => peer.seen.filter((c) => c.letter === letter);
const macrosFor = (peer: MilterPeer, letter: string) =>
  peer.seen.filter((c) => c.macrosFor === letter).map((c) => c.strings);

describe("milter session: negotiation and events", () => {
  it("offers version 6, every action and its protocol flags, and takes what the milter answers", async () => {
    const { peer, session } = await start({ actions: Action.ADDHDRS, protocol: Protocol.NR_HDR | Protocol.RCPT_REJ });
    const [optneg] = commandsOf(peer, "O");
    const view = new DataView(optneg!.data.buffer, optneg!.data.byteOffset);
    assert.deepEqual([view.getUint32(0), view.getUint32(4), view.getUint32(8)], [6, ALL_ACTIONS, OFFERED_PROTOCOL]);
    assert.equal(session.negotiated?.actions, Action.ADDHDRS);
    // RCPT_REJ was not offered, so it is not in force.
    assert.equal(session.negotiated?.protocol, Protocol.NR_HDR);
  });

  it("sends each event after its macros, in the order of an SMTP transaction, and the headers in Sendmail's form", async () => {
    const { peer, session } = await start({});
    const result = await converse(session);
    assert.deepEqual(result, { verdict: { kind: "accept" }, step: "eom", refusedRecipients: [], modifications: [] });
    assert.deepEqual(peer.letters(), [
      ..."O DC C H DM M DR R DR R DT T DL L DL L DL L DN N DB B DE E".split(" "),
    ]);
    const enc = (text: string) => [...new TextEncoder().encode(text)];
    assert.deepEqual([...commandsOf(peer, "C")[0]!.data], [
      ...enc("client.example\0"),
      0x34, // '4', SMFIA_INET
      0x0f,
      0xa0, // port 4000, big-endian
      ...enc("192.0.2.7\0"),
    ]);
    assert.deepEqual(commandsOf(peer, "M")[0]!.strings, ["<a@example.com>", "SIZE=100"]);
    assert.deepEqual(commandsOf(peer, "R").map((c) => c.strings), [["<b@example.org>"], ["<c@example.org>"]]);
    assert.deepEqual(macrosFor(peer, "C")[0], ["j", "relay.test", "{daemon_name}", "smtp"]);
    assert.deepEqual(macrosFor(peer, "M")[0], ["i", "Q1", "{auth_authen}", "alice", "{mail_addr}", "a@example.com"]);
    assert.deepEqual(macrosFor(peer, "R")[1], ["{rcpt_addr}", "c@example.org"]);
    // One space after the colon is eaten, the second kept; folded lines are joined by a bare LF.
    assert.deepEqual(commandsOf(peer, "L").map((c) => c.strings), [
      ["From", "a@example.com"],
      ["Subject", " two spaces"],
      ["X-Folded", "one\n\ttwo"],
    ]);
    assert.deepEqual(commandsOf(peer, "B")[0]!.strings, ["Hello\r\n"]);
    await session.close();
    assert.equal(peer.letters().at(-1), "Q");
  });

  it("keeps the space after the colon under SMFIP_HDR_LEADSPC, and sends only the macros the milter listed", async () => {
    const { peer, session } = await start({
      protocol: Protocol.HDR_LEADSPC,
      macroLists: { [MacroStage.ENVFROM]: "{mail_addr}", [MacroStage.CONNECT]: "j" },
    });
    await converse(session);
    assert.deepEqual(commandsOf(peer, "L")[0]!.strings, ["From", " a@example.com"]);
    assert.deepEqual(macrosFor(peer, "M"), [["{mail_addr}", "a@example.com"]]);
    assert.deepEqual(macrosFor(peer, "C"), [["j", "relay.test"]]);
  });

  it("does not send the events the milter skips (NO*), but their macros still", async () => {
    const skipAll = Protocol.NOCONNECT | Protocol.NOHELO | Protocol.NOMAIL | Protocol.NORCPT | Protocol.NODATA |
      Protocol.NOHDRS | Protocol.NOEOH | Protocol.NOBODY;
    const { peer, session } = await start({ protocol: skipAll });
    const result = await converse(session);
    assert.equal(result.verdict.kind, "accept");
    assert.deepEqual(peer.letters(), ["O", "DC", "DM", "DR", "DR", "DT", "DL", "DL", "DL", "DN", "DB", "DE", "E"]);
  });

  it("does not wait for answers the milter will not give (NR_*)", async () => {
    const noReplies = Protocol.NR_CONN | Protocol.NR_HELO | Protocol.NR_MAIL | Protocol.NR_RCPT | Protocol.NR_DATA |
      Protocol.NR_HDR | Protocol.NR_EOH | Protocol.NR_BODY;
    const { peer, session } = await start({
      protocol: noReplies,
      // Only end of message is answered: anything else would be an answer nobody asked for.
      script: (c) => (c.letter === "E" ? [replyPacket("a")] : undefined),
    });
    const result = await converse(session);
    assert.equal(result.verdict.kind, "accept");
    assert.equal(commandsOf(peer, "E").length, 1);
  });

  it("stops sending body chunks when the milter answers SKIP", async () => {
    const body = "x".repeat(150_000);
    const content = new TextEncoder().encode(`Subject: big\r\n\r\n${body}`);
    const { peer, session } = await start({
      protocol: Protocol.SKIP,
      script: (c) => (c.letter === "B" ? [replyPacket("s")] : undefined),
    });
    const result = await converse(session, { ...MESSAGE, content });
    assert.equal(result.verdict.kind, "accept");
    assert.equal(commandsOf(peer, "B").length, 1);
    assert.equal(commandsOf(peer, "B")[0]!.data.length, 65535);
    assert.equal(commandsOf(peer, "E").length, 1);
  });

  it("skips a milter that speaks version 2 the DATA event it does not know", async () => {
    const { peer, session } = await start({ version: 2 });
    await converse(session);
    assert.equal(commandsOf(peer, "T").length, 0);
  });

  it("connects to a milter on a Unix socket", async () => {
    const path = join(tmpdir(), `relay-milter-${process.pid}.sock`);
    const { peer, session } = await start({ unixPath: path });
    assert.equal(peer.address, `unix:${path}`);
    assert.equal((await converse(session)).verdict.kind, "accept");
  });
});

describe("milter session: verdicts", () => {
  it("takes each verdict at end of message, with the reply code's text", async () => {
    const cases: [string, Uint8Array, unknown][] = [
      ["accept", replyPacket("a"), { kind: "accept" }],
      ["continue", replyPacket("c"), { kind: "accept" }],
      ["reject", replyPacket("r"), { kind: "reject" }],
      ["tempfail", replyPacket("t"), { kind: "tempfail" }],
      ["discard", replyPacket("d"), { kind: "discard" }],
      [
        "replycode",
        replyPacket("y", (w) => w.string("554-5.7.1 Spam\r\n554 5.7.1 Go away")),
        { kind: "replycode", reply: { code: 554, text: "554-5.7.1 Spam\r\n554 5.7.1 Go away" } },
      ],
    ];
    for (const [name, packet, verdict] of cases) {
      const { session } = await start({ script: (c) => (c.letter === "E" ? [replyPacket("p"), packet] : undefined) });
      const result = await converse(session);
      assert.deepEqual(result.verdict, verdict, name);
      assert.equal(result.step, "eom", name);
    }
  });

  it("ends the message at an early verdict, sends ABORT, and goes on with the next message", async () => {
    const { peer, session } = await start({
      script: (
        c,
        seen,
      ) => (c.letter === "M" && commandsOf({ seen } as MilterPeer, "M").length === 1 ? [replyPacket("r")] : undefined),
    });
    const first = await converse(session);
    assert.deepEqual([first.verdict.kind, first.step], ["reject", "mail"]);
    await waitUntil(() => peer.letters(), (letters) => letters.at(-1) === "A", { what: "ABORT at the milter" });
    assert.deepEqual(peer.letters().slice(-3), ["DM", "M", "A"]);
    const second = await session.message(MESSAGE);
    assert.deepEqual([second.verdict.kind, second.step], ["accept", "eom"]);
  });

  it("ends the conversation for the message when the milter accepts early", async () => {
    const { peer, session } = await start({ script: (c) => (c.letter === "R" ? [replyPacket("a")] : undefined) });
    const result = await converse(session);
    assert.deepEqual([result.verdict.kind, result.step], ["accept", "rcpt"]);
    assert.equal(commandsOf(peer, "R").length, 1);
    assert.deepEqual(["T", "L", "B", "E"].map((l) => commandsOf(peer, l).length), [0, 0, 0, 0]);
  });

  it("refuses one recipient at RCPT and goes on with the others; refuses the message when none is left", async () => {
    const refuseB = (c: { letter: string; strings: string[] }) =>
      c.letter === "R" && c.strings[0] === "<b@example.org>"
        ? [replyPacket("y", (w) => w.string("550 5.1.1 No such user"))]
        : undefined;
    const { session } = await start({ script: refuseB });
    const result = await converse(session);
    assert.equal(result.verdict.kind, "accept");
    assert.deepEqual(result.refusedRecipients, [{
      address: "b@example.org",
      verdict: { kind: "replycode", reply: { code: 550, text: "550 5.1.1 No such user" } },
    }]);
    const only = await session.message({ ...MESSAGE, recipients: [{ address: "b@example.org" }] });
    assert.deepEqual([only.verdict.kind, only.step], ["replycode", "rcpt"]);
  });

  it("answers every message with a verdict given at CONNECT, sending nothing more", async () => {
    const { peer, session } = await start({ script: (c) => (c.letter === "C" ? [replyPacket("t")] : undefined) });
    const result = await converse(session);
    assert.deepEqual([result.verdict.kind, result.step], ["tempfail", "connect"]);
    assert.deepEqual(peer.letters(), ["O", "DC", "C"]);
  });

  it("reports a quarantine alongside the verdict", async () => {
    const { session } = await start({
      actions: Action.QUARANTINE,
      script: (
        c,
      ) => (c.letter === "E" ? [replyPacket("q", (w) => w.string("suspicious")), replyPacket("c")] : undefined),
    });
    const result = await converse(session);
    assert.deepEqual([result.verdict.kind, result.quarantine], ["accept", "suspicious"]);
  });
});

describe("milter session: modifications", () => {
  it("collects each modification at end of message, in order, the body's chunks joined", async () => {
    const edits = [
      replyPacket("h", (w) => w.string("X-Spam").string("Yes")),
      replyPacket("i", (w) => w.uint32(0).string("X-First").string("1")),
      replyPacket("m", (w) => w.uint32(1).string("Subject").string("")),
      replyPacket("e", (w) => w.string("<bounce@example.com>").string("SIZE=5")),
      replyPacket("+", (w) => w.string("<d@example.org>")),
      replyPacket("2", (w) => w.string("<e@example.org>").string("NOTIFY=NEVER")),
      replyPacket("-", (w) => w.string("<c@example.org>")),
      replyPacket("b", (w) => w.bytes(new TextEncoder().encode("new "))),
      replyPacket("b", (w) => w.bytes(new TextEncoder().encode("body\r\n"))),
      replyPacket("a"),
    ];
    const { session } = await start({
      actions: ALL_ACTIONS,
      script: (c) => (c.letter === "E" ? edits : undefined),
    });
    const result = await converse(session);
    assert.equal(result.verdict.kind, "accept");
    assert.deepEqual(result.modifications, [
      { kind: "add-header", name: "X-Spam", value: " Yes" },
      { kind: "insert-header", index: 0, name: "X-First", value: " 1" },
      { kind: "change-header", index: 1, name: "Subject", value: "" },
      { kind: "change-sender", address: "<bounce@example.com>", args: "SIZE=5" },
      { kind: "add-recipient", address: "<d@example.org>" },
      { kind: "add-recipient", address: "<e@example.org>", args: "NOTIFY=NEVER" },
      { kind: "delete-recipient", address: "<c@example.org>" },
      { kind: "replace-body", body: new TextEncoder().encode("new body\r\n") },
    ]);
  });

  it("refuses a modification the milter did not negotiate, or one before end of message", async () => {
    const unannounced = await start({
      actions: Action.ADDHDRS,
      script: (c) => (c.letter === "E" ? [replyPacket("-", (w) => w.string("<b@example.org>"))] : undefined),
    });
    await assert.rejects(
      converse(unannounced.session),
      (e) => e instanceof MilterProtocolError && /did not negotiate/.test(e.message),
    );
    const early = await start({
      actions: ALL_ACTIONS,
      script: (c) => (c.letter === "M" ? [replyPacket("h", (w) => w.string("X-A").string("1"))] : undefined),
    });
    await assert.rejects(
      converse(early.session),
      (e) => e instanceof MilterProtocolError && /not at mail/.test(e.message),
    );
  });

  it("refuses a milter that asks for actions beyond those offered", async () => {
    const peer = await startMilterPeer({ actions: Action.CHGBODY | Action.ADDHDRS });
    peers.push(peer);
    await assert.rejects(
      openMilter(parseMilterEndpoint(peer.address), { actions: Action.ADDHDRS }),
      (e) => e instanceof MilterProtocolError && /beyond the offered/.test(e.message),
    );
  });
});

describe("milter session: a milter that fails", () => {
  it("times out a milter that never answers end of message, and is done with it", async () => {
    const clock = new FakeClock();
    const { peer, session } = await start(
      { script: (c) => (c.letter === "E" ? "silent" : undefined) },
      { clock, timeouts: { commandMs: 5_000 } },
    );
    const outcome = converse(session).catch((error: unknown) => error);
    await waitUntil(() => commandsOf(peer, "E").length, (n) => n === 1, { what: "end of message at the milter" });
    await clock.timerSet(5_000);
    await clock.advance(5_000);
    const error = await outcome;
    assert.ok(error instanceof MilterTimeoutError && error.step === "eom" && error.timeoutMs === 5_000, String(error));
    await assert.rejects(session.message(MESSAGE), MilterTimeoutError);
  });

  it("bounds the whole message by its own timeout", async () => {
    const clock = new FakeClock();
    const { peer, session } = await start(
      {
        script: (c) => {
          // Time passes once the message has started (the clock steps, no timer fires) ...
          if (c.letter === "M") clock.set(clock.now() + 6_000);
          return c.letter === "E" ? "silent" : undefined;
        },
      },
      { clock, timeouts: { commandMs: 5_000, messageMs: 8_000 } },
    );
    const outcome = converse(session).catch((error: unknown) => error);
    await waitUntil(() => commandsOf(peer, "E").length, (n) => n === 1, { what: "end of message at the milter" });
    // ... so only what is left of the 8 s is waited for at end of message.
    await clock.timerSet(2_000);
    await clock.advance(2_000);
    const error = await outcome;
    assert.ok(error instanceof MilterTimeoutError && /message's 8000 ms/.test(error.step), String(error));
  });

  it("times out a milter that trickles its answer, however steadily the bytes come", async () => {
    // One byte every 10 ms of a 60 kB packet: ten minutes, each byte well within the 300 ms.
    const trickled = {
      send: [replyPacket("b", (w) => w.bytes(new Uint8Array(60_000)))],
      trickle: { bytes: 1, everyMs: 10 },
    };
    const { peer, session } = await start(
      { actions: ALL_ACTIONS, script: (c) => (c.letter === "E" ? trickled : undefined) },
      { timeouts: { commandMs: 300 } },
    );
    await assert.rejects(converse(session), (e) => e instanceof MilterTimeoutError && e.step === "eom");
    await waitUntil(() => peer.openConnections(), (n) => n === 0, { what: "the milter to see the close" });
  });

  it("closes without waiting out its timeout when the milter sent replies nobody asked for", async () => {
    const clock = new FakeClock(); // its timers never fire: the timeout that forces the close cannot help
    const { peer, session } = await start(
      { script: (c) => (c.letter === "E" ? Array.from({ length: 100 }, () => replyPacket("c")) : undefined) },
      { clock },
    );
    assert.equal((await converse(session)).verdict.kind, "accept");
    await session.close();
    assert.equal(peer.letters().at(-1), "Q");
    await waitUntil(() => peer.openConnections(), (n) => n === 0, { what: "the milter to see the close" });
  });

  it("fails with a connection error when the milter hangs up mid-message", async () => {
    const { session } = await start({ script: (c) => (c.letter === "B" ? "close" : undefined) });
    await assert.rejects(converse(session), (e) => e instanceof MilterConnectionError && /closed/.test(e.message));
  });

  it("fails with a protocol error when the milter answers garbage, and closes the connection", async () => {
    const { peer, session } = await start({
      script: (c) => (c.letter === "R" ? [Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x61)] : undefined),
    });
    await assert.rejects(
      converse(session),
      (e) => e instanceof MilterProtocolError && /over the limit/.test(e.message),
    );
    await waitUntil(() => peer.seen.length, () => true, { what: "anything" });
    await assert.rejects(session.message(MESSAGE), MilterError);
  });

  it("fails to open a milter that is not there", async () => {
    const peer = await startMilterPeer();
    const address = peer.address;
    await peer.close();
    await assert.rejects(
      openMilter(parseMilterEndpoint(address), { connectTimeoutMs: 5_000 }),
      (e) => e instanceof MilterConnectionError && e.message.includes(address),
    );
  });
});

describe("milter endpoints", () => {
  it("reads inet:host:port and unix:/path, and refuses anything else", () => {
    assert.deepEqual(parseMilterEndpoint("inet:127.0.0.1:11332"), { kind: "inet", host: "127.0.0.1", port: 11332 });
    assert.deepEqual(parseMilterEndpoint("inet:[::1]:8891"), { kind: "inet", host: "::1", port: 8891 });
    assert.deepEqual(parseMilterEndpoint("unix:/run/milter.sock"), { kind: "unix", path: "/run/milter.sock" });
    for (const bad of ["inet:host", "inet:host:0", "inet:host:70000", "tcp:host:1", "unix:relative", ""]) {
      assert.throws(() => parseMilterEndpoint(bad), RangeError, bad);
    }
  });
});
