/**
 * A full disk (issue 19): with RELAY_DATA_DIR on a small tmpfs, the relay
 * refuses new mail with SMTP 452 4.3.1 (RFC 3463 "mail system full"; 452
 * "insufficient system storage", RFC 5321 4.2.2) and HTTP 507, early (at
 * MAIL FROM) once it knows, and takes mail again by itself when space
 * returns. Every message it acknowledged is delivered exactly once and
 * recorded as delivered; nothing it refused is stored; the database is intact.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  rmdirSync,
  rmSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "libsql";
import { peerUnavailable } from "../helpers/peers.ts";
import { SmtpTalk } from "../helpers/smtp-talk.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWorld, type World } from "../helpers/world.ts";

const MIB = 1024 * 1024;
/** Small enough to fill in a moment, large enough for the relay's own files. */
const TMPFS_SIZE = "48m";
/** RELAY_MIN_FREE_BYTES for the test: the default (64 MiB) is more than the whole tmpfs. */
const RESERVE = 8 * MIB;

/** Why this machine cannot mount a tmpfs for the test, or undefined when it can. */
function mountProblem(): string | undefined {
  if (process.getuid?.() !== 0) return "cannot run: mounting a tmpfs needs root";
  const probe = mkdtempSync(join(tmpdir(), "relay-mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], { stdio: "pipe" });
    execFileSync("umount", [probe], { stdio: "pipe" });
    return undefined;
  } catch (error) {
    return `cannot run: mount -t tmpfs failed (${(error as Error).message.split("\n")[0]})`;
  } finally {
    rmdirSync(probe);
  }
}

const mountMissing = peerUnavailable(
  "a tmpfs data directory",
  mountProblem(),
  "run the tests as root where mount is permitted, as CI does",
);

const freeBytes = (dir: string) => {
  const stats = statfsSync(dir);
  return Number(stats.bavail) * Number(stats.bsize);
};

/** About `bytes` of message text, in lines of 78 octets. */
const bodyOf = (bytes: number) => `${"x".repeat(76)}\r\n`.repeat(Math.ceil(bytes / 78));

type Answer = { subject: string; via: "smtp" | "http"; acked: boolean; id?: string; reply: string };

describe("a full data directory", { skip: mountMissing }, () => {
  let mount = "";
  let world: World;
  const answers: Answer[] = [];

  before(async () => {
    mount = mkdtempSync(join(tmpdir(), "relay-full-disk-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_SIZE}`, "tmpfs", mount]);
    world = await startWorld({ dataDir: join(mount, "data"), env: { RELAY_MIN_FREE_BYTES: String(RESERVE) } });
  });
  after(async () => {
    await world?.close();
    if (mount) {
      execFileSync("umount", [mount]);
      rmdirSync(mount);
    }
  });

  /** One SMTP transaction; the replies to MAIL FROM and, when it got that far, to the data. */
  async function smtp(subject: string, bytes: number, mailParams = ""): Promise<Answer> {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      await talk.command("EHLO client.test");
      const mail = await talk.command(`MAIL FROM:<a@sender.test>${mailParams}`);
      let reply = mail;
      if (mail.startsWith("250")) {
        assert.match(await talk.command("RCPT TO:<full@dest.test>"), /^250 /);
        assert.match(await talk.command("DATA"), /^354 /);
        reply = await talk.command(`Subject: ${subject}\r\n\r\n${bodyOf(bytes)}.`);
      }
      await talk.command("QUIT");
      const answer = { subject, via: "smtp" as const, acked: reply.startsWith("250 "), reply };
      answers.push({ ...answer, id: /queued as (\S+)/.exec(reply)?.[1] });
      return answer;
    } finally {
      talk.close();
    }
  }

  async function http(subject: string, bytes: number): Promise<Answer> {
    const sent = await world.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: ["full@dest.test"],
      raw: `Subject: ${subject}\r\n\r\n${bodyOf(bytes)}`,
    });
    const answer = { subject, via: "http" as const, acked: sent.status === 202, reply: JSON.stringify(sent.json) };
    answers.push({ ...answer, id: sent.json?.id });
    if (!answer.acked) {
      assert.equal(sent.status, 507, answer.reply);
      assert.equal(sent.json.status, 507);
      assert.equal(sent.json.title, "Insufficient storage");
    }
    return answer;
  }

  /** The reply to MAIL FROM alone (then RSET): how the relay stands now. */
  async function mailFrom(params = ""): Promise<string> {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      await talk.command("EHLO client.test");
      const reply = await talk.command(`MAIL FROM:<a@sender.test>${params}`);
      await talk.command("QUIT");
      return reply;
    } finally {
      talk.close();
    }
  }

  const STORAGE_FULL = /^452 4\.3\.1 Insufficient system storage/;
  const delivered = (subject: string) =>
    world.destination.messages.filter((m) => m.data.includes(`Subject: ${subject}\r\n`)).length;

  it("takes mail while there is room", async () => {
    assert.ok((await smtp("before-smtp", 1000)).acked);
    assert.ok((await http("before-http", 1000)).acked);
  });

  it("refuses what does not fit with 452 4.3.1 (SMTP) and 507 (HTTP), early when it knows", async () => {
    writeFileSync(join(mount, "filler"), new Uint8Array(freeBytes(mount) - RESERVE - 2 * MIB));
    // RFC 1870 6.1: a declared SIZE the relay has no room for is refused at MAIL FROM.
    await waitUntil(() => mailFrom(` SIZE=${10 * MIB}`), (reply) => STORAGE_FULL.test(reply), {
      what: "MAIL FROM with a SIZE larger than the room left refused with 452 4.3.1",
      timeout: 20_000,
      every: 200,
    });
    // Above the reserve, a message with no SIZE is taken in; its bytes do not fit on the disk.
    assert.match(await mailFrom(), /^250 /);
    const tooLarge = await smtp("too-large-smtp", 12 * MIB);
    assert.match(tooLarge.reply, STORAGE_FULL);
    assert.ok(world.relay.running, "the relay is still running");
    await waitUntil(() => mailFrom(), (reply) => reply.startsWith("250 "), {
      what: "the space the failed write took given back",
      timeout: 20_000,
      every: 200,
    });
    assert.equal((await http("too-large-http", 12 * MIB)).acked, false);
  });

  it("fills up with 1 MiB messages until it refuses them, then refuses at MAIL FROM", async () => {
    await waitUntil(() => mailFrom(), (reply) => reply.startsWith("250 "), {
      what: "the space the failed write took given back",
      timeout: 20_000,
      every: 200,
    });
    let refused = 0;
    for (let i = 0; i < 48 && refused === 0; i++) {
      const answer = i % 2 === 0 ? await smtp(`fill-${i}`, MIB) : await http(`fill-${i}`, MIB);
      if (answer.acked) continue;
      refused++;
      if (answer.via === "smtp") assert.match(answer.reply, STORAGE_FULL);
    }
    assert.equal(refused, 1, "a message was refused once the disk was full");
    assert.match(await mailFrom(), STORAGE_FULL);
    assert.ok(world.relay.running, "the relay is still running");
  });

  it("delivers while the disk is full, takes mail again by itself once space returns, loses nothing", async () => {
    // Deliveries go on: every message taken so far reaches the destination with the disk still full.
    const ackedSoFar = answers.filter((a) => a.acked);
    await world.destination.waitFor((_) => ackedSoFar.every((a) => delivered(a.subject) > 0), 30_000);
    assert.match(await mailFrom(), STORAGE_FULL);

    unlinkSync(join(mount, "filler"));
    await waitUntil(() => mailFrom(), (reply) => reply.startsWith("250 "), {
      what: "MAIL FROM accepted again after the filler was removed",
      timeout: 20_000,
      every: 200,
    });
    assert.ok((await smtp("after-smtp", 1000)).acked);
    assert.ok((await http("after-http", 1000)).acked);

    const acked = answers.filter((a) => a.acked);
    await world.destination.waitFor((_) => acked.every((a) => delivered(a.subject) > 0), 30_000);
    // Recorded as delivered too: an outcome that could not be written while the disk was full is written later.
    for (const { id, subject } of acked) {
      await waitUntil(
        () => world.api("GET", `/v1/messages/${id}`),
        (view) => view.json?.recipients?.[0]?.state === "delivered",
        { what: `${subject} (${id}) recorded as delivered`, timeout: 30_000, every: 200 },
      );
    }
    for (const { subject, acked: taken } of answers) {
      assert.equal(delivered(subject), taken ? 1 : 0, `${subject}: delivered as often as acknowledged`);
    }
    assert.equal(await world.relay.stop(), 0);

    // A copy, checked outside the tmpfs: libSQL keeps a file open while statements it prepared live, which
    // would keep the tmpfs busy.
    const copy = mkdtempSync(join(tmpdir(), "relay-full-disk-db-"));
    for (const file of ["relay.db", "relay.db-wal"]) {
      if (existsSync(join(mount, "data", file))) copyFileSync(join(mount, "data", file), join(copy, file));
    }
    const database = new Database(join(copy, "relay.db"));
    try {
      assert.deepEqual(database.prepare("PRAGMA integrity_check").all(), [{ integrity_check: "ok" }]);
      const stored = database.prepare("SELECT count(*) AS n FROM messages").get() as { n: number };
      assert.equal(stored.n, acked.length, "only the acknowledged messages are stored");
    } finally {
      database.close();
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
