// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * The suppression list end to end: a hard bounce at the destination puts the
 * address on it, and the next message to it, over HTTP or SMTP and after a
 * restart, is accepted but never sent (counted at the destination: no RCPT
 * for it), with a `suppressed` event; DELETE makes it sendable again. The
 * CLI imports and exports it as CSV.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type RelayProcess, runRelay, startRelay } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { type RelayApi, relayApi, startWorld, type World } from "../helpers/world.ts";

/** RELAY_SUPPRESS_BOUNCE_CATEGORIES's default (the test world turns it off for the other tests). */
const BOUNCE_CATEGORIES = "bad-mailbox,bad-domain,inactive-mailbox";

/** RCPT commands the destination saw for an address: every attempt to send to it. */
function rcptsFor(world: World, address: string): number {
  const rcpt = new RegExp(`^RCPT TO:<${address.replace(/[.]/g, "\\.")}>`, "i");
  return world.destination.sessions.flatMap((s) => s.commands).filter((c) => rcpt.test(c)).length;
}

async function send(api: RelayApi, rcpt_to: string[], subject: string) {
  const sent = await api.api("POST", "/v1/messages", {
    mail_from: "app@sender.test",
    rcpt_to,
    raw: `From: app@sender.test\r\nSubject: ${subject}\r\n\r\nx\r\n`,
  });
  assert.equal(sent.status, 202, JSON.stringify(sent.json));
  return sent.json;
}

/** The message's view once `delivered` names the recipient that is sent: by then a suppressed one would have gone too. */
async function settled(api: RelayApi, id: string, delivered: string) {
  await api.waitForEvent((e) => e.type === "delivered" && e.message_id === id && e.recipient === delivered);
  return (await api.api("GET", `/v1/messages/${id}`)).json;
}

function assertSuppressed(view: any, address: string, reason: string) {
  const recipient = view.recipients.find((r: any) => r.email === address);
  assert.equal(recipient?.state, "suppressed", JSON.stringify(view.recipients));
  const event = view.events.find((e: any) => e.type === "suppressed" && e.recipient === address);
  assert.ok(event, `a suppressed event for ${address}: ${JSON.stringify(view.events)}`);
  assert.equal(event.reason, reason);
}

describe("suppression list", () => {
  let world: World;
  const extra: (() => Promise<void>)[] = [];
  before(async () => {
    world = await startWorld({ env: { RELAY_SUPPRESS_BOUNCE_CATEGORIES: BOUNCE_CATEGORIES } });
  });
  after(async () => {
    for (const cleanup of extra.reverse()) await cleanup();
    await world?.close();
  });

  it("a hard bounce suppresses the address: the next message over HTTP and SMTP is not sent, even after a restart; DELETE lifts it", async () => {
    const first = await send(world, ["nouser@dest.test", "ok1@dest.test"], "first");
    const bounced = await world.waitForEvent((e) => e.type === "bounced" && e.message_id === first.id);
    assert.equal(bounced.category, "bad-mailbox");
    assert.equal(rcptsFor(world, "nouser@dest.test"), 1);
    const listed = await world.api("GET", "/v1/suppressions?address=nouser@dest.test");
    assert.deepEqual(
      listed.json.suppressions.map((s: any) => [s.address, s.scope, s.reason, s.source]),
      [["nouser@dest.test", "global", "hard-bounce", { event: "bounced", message_id: first.id }]],
    );

    // HTTP: accepted, answered as suppressed, never sent (another case of the same address too).
    const viaHttp = await send(world, ["NoUser@dest.test", "ok2@dest.test"], "second");
    assert.deepEqual(viaHttp.recipients, [
      { email: "NoUser@dest.test", status: "suppressed" },
      { email: "ok2@dest.test", status: "queued" },
    ]);
    assertSuppressed(await settled(world, viaHttp.id, "ok2@dest.test"), "NoUser@dest.test", "hard-bounce");

    // SMTP: 250 for the message; the event says why.
    const replies = await sendMail(
      world.relay.smtpPort,
      "app@sender.test",
      ["nouser@dest.test", "ok3@dest.test"],
      "From: app@sender.test\r\nSubject: third\r\n\r\nx\r\n",
    );
    assert.match(replies.at(-2)!, /^250 /);
    const smtpId = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
    assertSuppressed(await settled(world, smtpId, "ok3@dest.test"), "nouser@dest.test", "hard-bounce");
    assert.equal(rcptsFor(world, "nouser@dest.test"), 1, "no second attempt at the destination");

    // A restart on the same data directory keeps the list.
    const { dataDir, smtpPort, httpPort, adminToken } = world.relay;
    assert.equal(await world.relay.stop(), 0);
    const again: RelayProcess = await startRelay({
      dataDir,
      smtpPort,
      httpPort,
      adminToken,
      env: {
        RELAY_DNS_SERVERS: `127.0.0.1:${world.dns.port}`,
        RELAY_MX_PORT: String(world.destination.port),
        RELAY_RETRY_SCHEDULE: "1s",
        RELAY_SUPPRESS_BOUNCE_CATEGORIES: BOUNCE_CATEGORIES,
      },
    });
    extra.push(async () => void (await again.stop()));
    const restarted = relayApi(again);
    const afterRestart = await send(restarted, ["nouser@dest.test", "ok4@dest.test"], "fourth");
    assert.equal(afterRestart.recipients[0].status, "suppressed");
    assertSuppressed(await settled(restarted, afterRestart.id, "ok4@dest.test"), "nouser@dest.test", "hard-bounce");
    assert.equal(rcptsFor(world, "nouser@dest.test"), 1);

    // DELETE: sendable again (and it bounces, and is suppressed, once more).
    const removed = await restarted.api("DELETE", "/v1/suppressions/nouser@dest.test");
    assert.deepEqual([removed.status, removed.json], [200, { removed: 1 }]);
    assert.equal((await restarted.api("DELETE", "/v1/suppressions/nouser@dest.test")).status, 404);
    const fifth = await send(restarted, ["nouser@dest.test"], "fifth");
    assert.equal(fifth.recipients[0].status, "queued");
    await restarted.waitForEvent((e) => e.type === "bounced" && e.message_id === fifth.id);
    assert.equal(rcptsFor(world, "nouser@dest.test"), 2);
    const relisted = await restarted.api("GET", "/v1/suppressions?address=nouser@dest.test");
    assert.equal(relisted.json.suppressions[0].source.message_id, fifth.id);
  });
});

describe("suppression list: API input and the CLI's CSV", () => {
  let world: World;
  const dirs: string[] = [];
  before(async () => {
    world = await startWorld();
  });
  after(async () => {
    await world?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("POST lists every invalid field; a manual entry with a scope suppresses only that sender", async () => {
    const bad = await world.api("POST", "/v1/suppressions", { address: "not an address", reason: "bored", scope: "x" });
    assert.equal(bad.status, 422);
    assert.deepEqual(bad.json.errors.map((e: any) => e.field).sort(), ["address", "reason", "scope"]);
    const added = await world.api("POST", "/v1/suppressions", {
      address: "Scoped@dest.test",
      scope: "domain:other.test",
    });
    assert.equal(added.status, 201);
    assert.deepEqual([added.json.address, added.json.scope, added.json.reason], [
      "scoped@dest.test",
      "domain:other.test",
      "manual",
    ]);
    const fromSender = await send(world, ["scoped@dest.test"], "not scoped");
    assert.equal(fromSender.recipients[0].status, "queued", "the entry is for mail from other.test only");
    const noAddress = await world.api("DELETE", "/v1/suppressions?scope=nonsense");
    assert.equal(noAddress.status, 400);
    assert.deepEqual(noAddress.json.errors.map((e: any) => e.field).sort(), ["address", "scope"]);
    const removed = await world.api("DELETE", "/v1/suppressions?address=SCOPED@dest.test&scope=domain:other.test");
    assert.deepEqual([removed.status, removed.json], [200, { removed: 1 }]);
  });

  it("imports a CSV (a bad line reported by number, the others imported), suppresses what it imported, and exports it back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "relay-suppress-csv-"));
    dirs.push(dir);
    const input = join(dir, "in.csv");
    writeFileSync(
      input,
      [
        "address,reason,expires_at",
        "imported1@dest.test,,",
        "not-an-address,complaint,",
        '"Imported2@Dest.test",unsubscribe,2099-01-01T00:00:00Z',
        "",
      ].join("\n"),
    );
    const imported = await runRelay(["suppressions", "import", input], { dataDir: world.relay.dataDir });
    assert.equal(imported.code, 1, imported.stderr);
    assert.match(imported.stderr, /in\.csv:3: address: expected an email address/);
    assert.doesNotMatch(imported.stderr, /in\.csv:[124]:/);
    assert.match(imported.stdout, /imported 2 entries; refused 1 lines/);

    const sent = await send(world, ["imported2@dest.test", "ok@dest.test"], "after import");
    assert.deepEqual(sent.recipients.map((r: any) => r.status), ["suppressed", "queued"]);
    assertSuppressed(await settled(world, sent.id, "ok@dest.test"), "imported2@dest.test", "unsubscribe");
    assert.equal(rcptsFor(world, "imported2@dest.test"), 0);

    const exported = await runRelay(["suppressions", "export"], { dataDir: world.relay.dataDir });
    assert.equal(exported.code, 0, exported.stderr);
    const lines = exported.stdout.trim().split("\n");
    assert.equal(lines[0], "address,scope,reason,source_event,source_message_id,created_at,expires_at");
    const rows = (text: string) =>
      text.trim().split("\n").slice(1).filter((l) => l.startsWith("imported")).map((l) => {
        const [address, scope, reason, , , , expires] = l.split(",");
        return [address, scope, reason, expires];
      });
    assert.deepEqual(rows(exported.stdout), [
      ["imported1@dest.test", "global", "import", ""],
      ["imported2@dest.test", "global", "unsubscribe", "2099-01-01T00:00:00.000Z"],
    ]);

    // The export imports as it was into another node's database.
    const file = join(dir, "export.csv");
    writeFileSync(file, exported.stdout);
    const other = mkdtempSync(join(tmpdir(), "relay-suppress-other-"));
    dirs.push(other);
    const reimported = await runRelay(["suppressions", "import", file], { dataDir: other });
    assert.equal(reimported.code, 0, reimported.stderr);
    const reexported = await runRelay(["suppressions", "export"], { dataDir: other });
    assert.deepEqual(rows(reexported.stdout), rows(readFileSync(file, "utf8")));
  });
});
