// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * A recheck that finds a sending domain's record changed or gone raises a
 * `domain_changed` event in the durable log (GET /v1/events).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { runRelay } from "../helpers/relay-process.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

describe("domain_changed events", () => {
  let world: World;
  before(async () => {
    world = await startWorld({ env: { RELAY_SOURCE_IP: "127.0.0.1" } });
  });
  after(async () => {
    await world?.close();
  });

  it("domains add, publish, check passes; the DKIM record removed, the next check raises domain_changed", async () => {
    const env = { RELAY_DNS_SERVERS: `127.0.0.1:${world.dns.port}`, RELAY_SOURCE_IP: "127.0.0.1" };
    const added = await runRelay(["domains", "add", "sender.test", "--selector", "s1", "--json"], {
      dataDir: world.relay.dataDir,
      env,
    });
    assert.equal(added.code, 0, added.stderr);
    const records: { name: string; type: string; value: string; required: boolean }[] =
      JSON.parse(added.stdout).records;
    const zone: Record<string, any> = { ...defaultZone() };
    for (const r of records) {
      if (!r.required || r.type !== "TXT") continue;
      const entry = (zone[r.name] ??= {});
      entry.TXT = [...(entry.TXT ?? []), r.value];
    }
    world.dns.setZone(zone);

    const passing = await world.api("POST", "/v1/domains/sender.test/check");
    assert.equal(passing.status, 200);
    assert.equal(passing.json.ok, true, JSON.stringify(passing.json, null, 1));
    assert.equal(
      (await world.events()).filter((e) => e.type === "domain_changed").length,
      0,
      "the first check is the baseline",
    );

    delete zone["s1._domainkey.sender.test"];
    world.dns.setZone(zone);
    const failing = await world.api("POST", "/v1/domains/sender.test/check");
    assert.equal(failing.json.ok, false);

    const changed = (await world.events()).filter((e) => e.type === "domain_changed");
    assert.equal(changed.length, 1, JSON.stringify(changed));
    const event = changed[0];
    assert.equal(event.message_id, null);
    assert.equal(event.recipient, null);
    assert.equal(event.domain, "sender.test");
    assert.equal(event.record, "dkim");
    assert.equal(event.name, "s1._domainkey.sender.test");
    assert.equal(event.before, "pass");
    assert.equal(event.after, "fail");
    assert.match(event.fix, /^publish s1\._domainkey\.sender\.test\. TXT "v=DKIM1; k=rsa; p=/);
    assert.ok(Date.parse(event.at) > Date.now() - 60_000);

    // Put back: one more event, passing again; `relay domains check` (another process) writes it too.
    world.dns.setZone({
      ...zone,
      "s1._domainkey.sender.test": { TXT: [records.find((r) => r.name === "s1._domainkey.sender.test")!.value] },
    });
    const cli = await runRelay(["domains", "check", "sender.test"], { dataDir: world.relay.dataDir, env });
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    const again = (await world.events()).filter((e) => e.type === "domain_changed");
    assert.deepEqual(again.map((e) => [e.record, e.before, e.after, e.fix]), [["dkim", "pass", "fail", event.fix], [
      "dkim",
      "fail",
      "pass",
      null,
    ]]);
  });
});
