// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * `relay drain` (issue 17): the running node refuses new mail, SMTP with
 * 421 4.3.2 (new connections and new transactions of sessions already
 * open) and HTTP with 503, says "draining" in the fleet registry, not ready
 * on /readyz, and delivers its queue; the command prints what is left until
 * the queue is empty and exits 0. With deferred mail it prints what is
 * left until Ctrl-C, and the drain stays in force; --no-wait returns.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { runRelay, testBinary } from "../helpers/relay-process.ts";
import { SmtpTalk } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

const worlds: World[] = [];
async function world(env: Record<string, string> = {}): Promise<World> {
  const w = await startWorld({ binary: testBinary, env: { RELAY_NODE_ID: "drain-node", ...env } });
  worlds.push(w);
  return w;
}

const drain = (w: World, args: string[] = [], interruptWhen?: (stdout: string) => boolean) =>
  runRelay(["drain", ...args], { dataDir: w.relay.dataDir, binary: testBinary, interruptWhen, timeoutMs: 60_000 });

async function send(w: World, to: string, subject: string) {
  return await w.api("POST", "/v1/messages", { from: "a@sender.test", to: [to], subject, text: "x" });
}

describe("relay drain", () => {
  after(async () => {
    for (const w of worlds) await w.close();
  });

  it(
    "refuses new mail over SMTP and HTTP, delivers the queue, and exits 0 once it is empty",
    { timeout: 90_000 },
    async () => {
      const w = await world();
      // The destination suspended: the message is still in the queue when the drain begins.
      const suspended = await w.api("POST", "/v1/queue/dest.test/suspend", { duration: "1h" });
      assert.equal(suspended.status, 200, JSON.stringify(suspended.json));
      const queued = await send(w, "queued@dest.test", "queued before the drain");
      assert.equal(queued.status, 202, JSON.stringify(queued.json));
      let since: string | undefined;
      const open = await SmtpTalk.open(w.relay.smtpPort);
      try {
        assert.match(await open.reply(), /^220 /);
        assert.match(await open.command("EHLO client.test"), /^250/);

        const started = await drain(w, ["--no-wait"]);
        assert.equal(started.code, 0, started.stderr);
        since = /^relay: drain-node is draining since (\S+): new mail is refused, it delivers its queue$/m
          .exec(started.stdout)?.[1];
        assert.ok(since, started.stdout);
        assert.match(started.stdout, /^relay: 1 recipient\(s\) left: 1 queued, 0 deferred, 0 held$/m);

        // A session open before the drain: its next transaction is refused, and the channel closed.
        assert.match(await open.command("MAIL FROM:<a@sender.test>"), /^421 4\.3\.2 relay\.test is draining/);
      } finally {
        open.close();
      }
      const fresh = await SmtpTalk.open(w.relay.smtpPort);
      try {
        assert.match(await fresh.reply(), /^421 4\.3\.2 relay\.test is draining: no new mail here, try another host/);
      } finally {
        fresh.close();
      }
      const refused = await send(w, "later@dest.test", "after the drain");
      assert.equal(refused.status, 503, JSON.stringify(refused.json));
      assert.equal(refused.json.title, "Node draining");
      const ready = await fetch(w.relay.url("/readyz"));
      assert.equal(ready.status, 503);
      assert.equal(((await ready.json()) as any).status, "draining");
      const fleet = await w.api("GET", "/v1/fleet");
      assert.deepEqual(fleet.json.nodes.map((n: any) => [n.id, n.status]), [["drain-node", "draining"]]);
      const state = await w.api("GET", "/v1/drain");
      assert.deepEqual(state.json, {
        node: "drain-node",
        draining: true,
        since,
        hands_over: false,
        left: { queued: 1, deferred: 0, held: 0, total: 1 },
      });

      // Delivery goes on: resumed, the destination gets what was queued, and the drain ends empty.
      assert.equal((await w.api("POST", "/v1/queue/dest.test/resume")).status, 200);
      const drained = await drain(w);
      assert.equal(drained.code, 0, drained.stderr);
      const lines = drained.stdout.trim().split("\n");
      assert.equal(
        lines[0],
        `relay: drain-node is draining since ${since}: new mail is refused, it delivers its queue`,
      );
      assert.equal(lines.at(-1), "relay: drain-node is drained: its queue is empty; stop it now");
      assert.deepEqual(w.destination.messages.map((m) => m.recipients), [["queued@dest.test"]]);
      const events = await w.events();
      assert.ok(events.some((e) => e.type === "delivered" && e.message_id === queued.json.id));
      assert.equal(events.filter((e) => e.type === "received").length, 1, "nothing but the first message came in");
    },
  );

  it(
    "with deferred mail: prints what is left until Ctrl-C, which leaves the drain in force; --no-wait returns",
    { timeout: 90_000 },
    async () => {
      // Retries an hour apart: the recipient stays deferred after its first 451.
      const w = await world({ RELAY_RETRY_SCHEDULE: "1h" });
      const sent = await send(w, "tempfail@dest.test", "deferred");
      assert.equal(sent.status, 202, JSON.stringify(sent.json));
      await w.waitForEvent((e) => e.type === "deferred" && e.message_id === sent.json.id);

      const started = await drain(w, ["--no-wait"]);
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stdout, /^relay: 1 recipient\(s\) left: 0 queued, 1 deferred, 0 held$/m);

      const hint = /^relay: deferred recipients wait for their next attempt: relay queue retry DESTINATION/m;
      const watched = await drain(w, [], (stdout) => hint.test(stdout));
      assert.equal(watched.code, 130, `interrupted by SIGINT\n${watched.stderr}`);
      assert.match(watched.stdout, /^relay: 1 recipient\(s\) left: 0 queued, 1 deferred, 0 held$/m);
      assert.doesNotMatch(watched.stdout, /drained/);

      const state = await w.api("GET", "/v1/drain");
      assert.equal(state.json.draining, true, "the drain outlives the command");
      assert.deepEqual(state.json.left, { queued: 0, deferred: 1, held: 0, total: 1 });
      assert.equal((await send(w, "b@dest.test", "still refused")).status, 503);
    },
  );
});
