/**
 * Running out of file descriptors (issue 19). The relay runs under a low
 * RLIMIT_NOFILE (prlimit, util-linux) and is sent more SMTP connections than
 * it can hold. It derives its connection cap from the limit at start (and
 * warns that RELAY_MAX_CONNECTIONS is above it), answers every connection
 * over the cap "421 4.3.2" and closes it, never leaves one unanswered, and
 * keeps descriptors for the rest of its work: while SMTP is full the HTTP
 * API answers, a message sent through it is spooled, committed and
 * delivered. When the connections go away, SMTP takes mail again, without
 * a restart.
 *
 * Before the cap, connections past the limit waited unanswered in the
 * kernel's backlog or were closed without a word (Bun's accept failed with
 * EMFILE, silently), and the HTTP API, which needs descriptors too, did not
 * answer at all.
 *
 * Past the cap, other connections (here idle HTTP ones) can still take
 * every descriptor: then a delivery due meanwhile cannot open its socket
 * (nor its DNS queries theirs: EMFILE), is deferred, never bounced, and is
 * delivered once the descriptors are back.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { connectionCap } from "../../src/app/connection-cap.ts";
import { peerMissing } from "../helpers/peers.ts";
import { testBinary } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWorld, type World } from "../helpers/world.ts";

const FILE_LIMIT = 256;
/** Well past what the relay can hold under FILE_LIMIT, and past the limit itself. */
const CONNECTIONS = 320;

const prlimitProblem = (() => {
  try {
    execFileSync("prlimit", ["--nofile=64:64", "true"], { stdio: "pipe" });
    return undefined;
  } catch (error) {
    return `cannot run: ${(error as Error).message.split("\n")[0]}`;
  }
})();

type First = { socket: Socket; reply: string; closedByServer: Promise<void> };

/** Connect and read the first reply; "" when the connection closed without one. */
function firstReply(port: number): Promise<First> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let text = "";
    const closedByServer = new Promise<void>((closed) => socket.once("close", () => closed()));
    socket.setEncoding("latin1");
    socket.on("error", () => undefined);
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (text.endsWith("\r\n")) resolve({ socket, reply: text.trimEnd(), closedByServer });
    });
    socket.once("close", () => resolve({ socket, reply: text.trimEnd(), closedByServer }));
    // A safety net: a connection left waiting in the backlog is a failure to report, not a hang.
    setTimeout(() => resolve({ socket, reply: "(no reply within 30 s)", closedByServer }), 30_000).unref();
  });
}

describe("out of file descriptors", { skip: peerMissing("prlimit", "util-linux", prlimitProblem) }, () => {
  let world: World;
  const cap = connectionCap(FILE_LIMIT);

  before(async () => {
    world = await startWorld({
      binary: testBinary,
      launcher: ["prlimit", `--nofile=${FILE_LIMIT}:${FILE_LIMIT}`, "--"],
      env: { RELAY_LOG_LEVEL: "info" },
    });
  });
  after(async () => {
    await world?.close();
  });

  it("says at start that RELAY_MAX_CONNECTIONS is above what the limit allows", () => {
    // Logged before the relay is ready, which startWorld waited for.
    const line = world.relay.stderr.split("\n").find((l) => l.includes("above what the open-file limit allows"));
    assert.ok(line, `no warning about the open-file limit in:\n${world.relay.stderr}`);
    const fields = JSON.parse(line);
    assert.equal(fields.level, "warn");
    assert.equal(fields.openFileLimit, FILE_LIMIT);
    assert.equal(fields.effective, cap);
    assert.equal(fields.configured, 2000);
  });

  it("answers every connection, 421 4.3.2 over the cap, and keeps working while full", async () => {
    const firsts = await Promise.all(Array.from({ length: CONNECTIONS }, () => firstReply(world.relay.smtpPort)));
    try {
      const banners = firsts.filter((f) => f.reply.startsWith("220 "));
      const refused = firsts.filter((f) => f.reply.startsWith("421 4.3.2 "));
      const other = firsts.filter((f) => !f.reply.startsWith("220 ") && !f.reply.startsWith("421 4.3.2 "));
      assert.deepEqual(other.map((f) => f.reply), [], "every connection is greeted or refused with 421 4.3.2");
      assert.equal(banners.length, cap, "as many sessions as the cap");
      assert.equal(refused.length, CONNECTIONS - cap);
      // Refused connections are closed by the relay, not left for the client to drop.
      await Promise.all(refused.map((f) => f.closedByServer));

      // Full: the HTTP API, the database, the spool and delivery still have descriptors.
      const ready = await fetch(world.relay.url("/readyz"), { signal: AbortSignal.timeout(10_000) });
      assert.equal(ready.status, 200);
      const sent = await world.api("POST", "/v1/messages", {
        from: "a@sender.test",
        to: ["full@dest.test"],
        subject: "while SMTP is full",
        text: "x",
      });
      assert.equal(sent.status, 202, JSON.stringify(sent.json));
      await waitUntil(
        () => world.destination.messages.some((m) => m.data.includes("Subject: while SMTP is full")),
        (seen) => seen,
        { what: "the message sent over HTTP while SMTP was full, delivered" },
      );
    } finally {
      for (const f of firsts) f.socket.destroy();
    }

    // The connections gone, SMTP takes mail again.
    // Sessions end as the relay sees each close: wait until a new connection is greeted.
    await waitUntil(
      async () => {
        const probe = await firstReply(world.relay.smtpPort);
        probe.socket.destroy();
        return probe.reply;
      },
      (reply) => reply.startsWith("220 "),
      { what: "a greeting once the connections are gone", every: 100 },
    );
    const replies = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["after@dest.test"],
      "Subject: after the flood\r\n\r\nx\r\n",
    );
    assert.match(replies.at(-2)!, /^250 /, replies.join(" | "));
    await waitUntil(
      () => world.destination.messages.some((m) => m.data.includes("Subject: after the flood")),
      (seen) => seen,
      { what: "the message sent after the flood, delivered" },
    );
    assert.ok(world.relay.running, "the relay is still running");
  });

  it("survives running out altogether: a delivery meanwhile is deferred, then delivered", async () => {
    // Due in a moment, while idle HTTP connections hold every descriptor the relay has.
    const sendAt = new Date(Date.now() + 3_000).toISOString();
    const sent = await world.api("POST", "/v1/messages", {
      from: "a@sender.test",
      to: ["starved@dest.test"],
      subject: "due while out of descriptors",
      text: "x",
      send_at: sendAt,
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const held: Socket[] = [];
    try {
      for (let i = 0; i < FILE_LIMIT; i++) {
        const socket = connect({ host: "127.0.0.1", port: world.relay.httpPort });
        socket.on("error", () => undefined);
        held.push(socket);
      }
      await waitUntil(
        () => world.events(),
        (events) => events.some((e) => e.type === "deferred" && e.recipient === "starved@dest.test"),
        { what: "the delivery due while out of descriptors, deferred" },
      );
    } finally {
      for (const socket of held) socket.destroy();
    }
    await waitUntil(
      () => world.destination.messages.some((m) => m.data.includes("Subject: due while out of descriptors")),
      (seen) => seen,
      { what: "the deferred message delivered once descriptors are back" },
    );
    const events = await world.events();
    // The destination was up all along: the only reason to defer was the want of descriptors.
    const deferred = events.find((e) => e.type === "deferred" && e.recipient === "starved@dest.test");
    assert.match(deferred.reply, /^4\d\d /);
    assert.deepEqual(events.filter((e) => e.type === "bounced"), [], "nothing bounced");
    assert.ok(world.relay.running, "the relay is still running");
  });
});
