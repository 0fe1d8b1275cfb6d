// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * The operator's hand on single messages and recipients of the running
 * relay, over HTTP and with `relay queue ...`: a held message is not
 * delivered (not even after a restart) until it is released; a recipient
 * bounced by the operator gets its DSN to the sender; retry sends a deferred
 * recipient now; GET /v1/queue/messages pages through the queue with its
 * filters, each recipient exactly once; `relay queue show` tells every
 * attempt and its reply.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { runRelay, startRelay, testBinary } from "../helpers/relay-process.ts";
import { relayApi, startWorld, type World } from "../helpers/world.ts";

const worlds: World[] = [];
async function world(): Promise<World> {
  // Retries an hour apart: anything that goes sooner went because it was told to.
  const w = await startWorld({ binary: testBinary, env: { RELAY_RETRY_SCHEDULE: "1h", RELAY_GREYLIST_RETRY: "1h" } });
  worlds.push(w);
  return w;
}

const queue = (w: World, ...args: string[]) =>
  runRelay(["queue", ...args], { dataDir: w.relay.dataDir, binary: testBinary });

async function send(w: World, to: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const sent = await w.api("POST", "/v1/messages", { from: "a@sender.test", to, subject: "s", text: "x", ...extra });
  assert.equal(sent.status, 202, JSON.stringify(sent.json));
  return sent.json.id;
}

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();
const stateOf = async (w: { api: World["api"] }, id: string) =>
  (await w.api("GET", `/v1/messages/${id}`)).json.recipients.map((r: any) => `${r.email} ${r.state}`);

describe("relay queue for messages and recipients, and /v1/queue/messages", () => {
  after(async () => {
    for (const w of worlds) await w.close();
  });

  it(
    "hold: a held message is not delivered, even after a restart, until it is released",
    { timeout: 60_000 },
    async () => {
      const w = await world();
      const due = Date.now() + 2000;
      const id = await send(w, ["held@dest.test"], { send_at: new Date(due).toISOString() });
      const held = await queue(w, "hold", id);
      assert.equal(held.code, 0, held.stderr);
      assert.equal(held.stdout.trim(), `relay: held 1 recipient(s) of ${id}`);
      await new Promise((r) => setTimeout(r, due - Date.now() + 1500));
      assert.deepEqual(await stateOf(w, id), ["held@dest.test held"]);
      assert.equal(w.destination.connections, 0, "nothing attempted at the receiver");

      // A restart does not release it.
      const { dataDir, adminToken } = w.relay;
      await w.relay.stop();
      const again = await startRelay({
        binary: testBinary,
        dataDir,
        adminToken,
        env: {
          RELAY_DNS_SERVERS: `127.0.0.1:${w.dns.port}`,
          RELAY_MX_PORT: String(w.destination.port),
          RELAY_RETRY_SCHEDULE: "1h",
        },
      });
      try {
        const api = relayApi(again);
        await new Promise((r) => setTimeout(r, 1500));
        assert.deepEqual(await stateOf(api, id), ["held@dest.test held"]);
        assert.equal(w.destination.connections, 0, "nothing attempted after the restart either");
        const summary = (await api.api("GET", "/v1/queue")).json;
        assert.deepEqual(summary.domains.map((d: any) => [d.domain, d.queued, d.deferred, d.held]), [[
          "dest.test",
          0,
          0,
          1,
        ]]);

        const released = await api.api("POST", `/v1/messages/${id}/release`);
        assert.equal(released.status, 200, JSON.stringify(released.json));
        assert.deepEqual(released.json, { id, released: 1 });
        await api.waitForEvent((e) => e.type === "delivered" && e.message_id === id);
        const types = (await api.events()).filter((e) => e.message_id === id).map((e) => e.type);
        assert.deepEqual(types, ["received", "held", "released", "delivered"]);
      } finally {
        await again.cleanup();
      }
    },
  );

  it(
    "bounce one recipient: it bounces with a DSN to the sender, the other stays queued",
    { timeout: 60_000 },
    async () => {
      const w = await world();
      const id = await send(w, ["gone@dest.test", "stays@dest.test"], { send_at: inAnHour() });
      const bounced = await queue(w, "bounce", `${id}:GONE@dest.test`);
      assert.equal(bounced.code, 0, bounced.stderr);
      assert.equal(bounced.stdout.trim(), `relay: bounced 1 recipient(s) (gone@dest.test of ${id})`);
      const event = await w.waitForEvent((e) => e.type === "bounced" && e.message_id === id);
      assert.equal(event.recipient, "gone@dest.test");
      assert.match(event.reply, /^554 5\.0\.0 bounced by the relay's operator/);
      const [dsn] = await w.destination.waitFor((m) => m.some((r) => r.recipients.includes("a@sender.test")), 20_000);
      assert.equal(dsn!.mailFrom, "");
      assert.match(dsn!.data, /Final-Recipient: rfc822; ?gone@dest\.test/i);
      assert.match(dsn!.data, /Action: failed/);
      assert.doesNotMatch(dsn!.data, /Final-Recipient: rfc822; ?stays@dest\.test/i);
      assert.deepEqual(await stateOf(w, id), ["gone@dest.test bounced", "stays@dest.test queued"]);

      const unknown = await w.api("POST", `/v1/messages/${id}/recipients/nobody@dest.test/bounce`);
      assert.equal(unknown.status, 404);
      assert.match(unknown.json.detail, /has no recipient "nobody@dest\.test"/);
    },
  );

  it(
    "retry: a deferred recipient goes now; show tells both attempts and their replies",
    { timeout: 60_000 },
    async () => {
      const w = await world();
      const id = await send(w, ["greylist@dest.test"]);
      await w.waitForEvent((e) => e.type === "deferred" && e.message_id === id);
      const retried = await queue(w, "retry", `${id}:greylist@dest.test`);
      assert.equal(retried.code, 0, retried.stderr);
      assert.equal(retried.stdout.trim(), `relay: made due now 1 recipient(s) (greylist@dest.test of ${id})`);
      await w.waitForEvent((e) => e.type === "delivered" && e.message_id === id);

      const message = await w.api("GET", `/v1/messages/${id}`);
      const log = message.json.recipients[0].attempt_log;
      assert.deepEqual(log.map((a: any) => [a.outcome, a.attempt, a.reply.slice(0, 3)]), [["deferred", 1, "450"], [
        "delivered",
        2,
        "250",
      ]]);
      assert.ok(log.every((a: any) => a.mx === "mx.dest.test"), JSON.stringify(log));
      const shown = await queue(w, "show", id);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /^greylist@dest\.test\s+delivered\s+2\s/m);
      assert.match(shown.stdout, /\sgreylist@dest\.test\s+deferred\s+1\s+mx\.dest\.test\s+450 /);
      assert.match(shown.stdout, /\sgreylist@dest\.test\s+delivered\s+2\s+mx\.dest\.test\s+250 /);
    },
  );

  it(
    "GET /v1/queue/messages: filters and cursor paging give each recipient exactly once",
    { timeout: 60_000 },
    async () => {
      const w = await world();
      const later = inAnHour();
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        ids.push(
          await send(w, [`r${i}@dest.test`, `s${i}@later.test`], {
            send_at: later,
            ...(i % 3 === 0 ? { tags: ["news"] } : {}),
          }),
        );
      }
      for (const id of ids.slice(0, 4)) {
        assert.equal(
          (await queue(w, "hold", `${id}:s${ids.indexOf(id)}@later.test`)).code,
          0,
        );
      }

      const all = async (query: string) => {
        const seen: any[] = [];
        let cursor: string | null = null;
        do {
          const page: any = await w.api(
            "GET",
            `/v1/queue/messages?limit=5${query}${cursor ? `&cursor=${cursor}` : ""}`,
          );
          assert.equal(page.status, 200, JSON.stringify(page.json));
          assert.ok(page.json.recipients.length <= 5);
          seen.push(...page.json.recipients);
          cursor = page.json.next_cursor;
        } while (cursor !== null);
        const emails = seen.map((r) => r.email);
        assert.equal(new Set(emails).size, emails.length, `no recipient twice: ${emails}`);
        return emails.toSorted();
      };
      const names = (prefix: string, at: string, which: number[]) => which.map((i) => `${prefix}${i}@${at}`).toSorted();
      const range = (n: number) => Array.from({ length: n }, (_, i) => i);
      assert.deepEqual(
        await all(""),
        [...names("r", "dest.test", range(12)), ...names("s", "later.test", range(12))].toSorted(),
      );
      assert.deepEqual(await all("&domain=later.test&state=held"), names("s", "later.test", [0, 1, 2, 3]));
      assert.deepEqual(await all("&state=held"), names("s", "later.test", [0, 1, 2, 3]));
      assert.deepEqual(await all("&domain=dest.test&tag=news"), names("r", "dest.test", [0, 3, 6, 9]));
      assert.deepEqual(await all("&sender=A@Sender.test&recipient=r5@dest.test"), ["r5@dest.test"]);
      assert.deepEqual(await all("&older_than=1h"), []);

      const bad = await w.api("GET", "/v1/queue/messages?cursor=nonsense&state=gone");
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.json.errors.map((e: any) => e.field).toSorted(), ["cursor", "state"]);

      const listed = await queue(w, "list", "--state", "held", "--domain", "later.test");
      assert.equal(listed.code, 0, listed.stderr);
      const lines = listed.stdout.trim().split("\n");
      assert.match(lines[0]!, /^MESSAGE\s+RECIPIENT\s+STATE\s+ATTEMPTS\s+NEXT ATTEMPT\s+SENDER\s+LAST REPLY$/);
      assert.deepEqual(
        lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3)),
        [0, 1, 2, 3].map((i) => [ids[i], `s${i}@later.test`, "held"]),
      );
      const limited = await queue(w, "list", "--limit", "3", "--json");
      assert.equal(limited.stdout.trim().split("\n").length, 3);
    },
  );

  it("a destination's hold and release; summary fits a screen with a totals line", { timeout: 60_000 }, async () => {
    const w = await world();
    const later = inAnHour();
    for (let i = 0; i < 3; i++) await send(w, [`h${i}@dest.test`], { send_at: later });
    const held = await queue(w, "hold", "dest.test");
    assert.equal(held.code, 0, held.stderr);
    assert.match(held.stdout, /^relay: held 3 recipient\(s\) of mx\.dest\.test~[0-9a-f]{8}$/m);
    const summary = await queue(w, "summary");
    assert.equal(summary.code, 0, summary.stderr);
    assert.match(summary.stdout, /^DESTINATION\s+STATE\s+QUEUED\s+DEFERRED\s+HELD\s+IN FLIGHT\s+OLDEST\s+LAST REPLY$/m);
    assert.match(
      summary.stdout,
      /^total: 0 queued, 0 deferred, 3 held, 0 in flight at 1 destination\(s\) and domain\(s\)$/m,
    );

    const released = await queue(w, "release", "dest.test");
    assert.equal(released.code, 0, released.stderr);
    assert.match(released.stdout, /^relay: released 3 recipient\(s\) of /m);
    const page = (await w.api("GET", "/v1/queue/messages?domain=dest.test")).json;
    assert.deepEqual(page.recipients.map((r: any) => r.state), ["queued", "queued", "queued"]);
    assert.equal(w.destination.connections, 0, "released: due when they were due, an hour ahead");

    const usage = await queue(w, "delete", "dest.test");
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /queue delete: expected a message id or ID:RECIPIENT/);
    const wrongOption = await queue(w, "hold", "dest.test", "--for", "1h");
    assert.equal(wrongOption.code, 2);
    assert.match(wrongOption.stderr, /queue hold: --for does not apply/);
  });
});
