import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { domainChanges } from "../../src/auth/domain-changes.ts";
import type { DomainCheckReport, RecordCheck } from "../../src/auth/domain-check.ts";
import { DomainService } from "../../src/auth/domains.ts";
import type { Resolver } from "../../src/dns/resolver.ts";
import { DomainStore } from "../../src/queue/domains.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-domain-changes-");

const T0 = Date.UTC(2026, 4, 18, 12);
const DAY = 86_400_000;

/** A resolver over a plain map that a test can change between checks. */
function fakeResolver(txt: Map<string, string[]>): Resolver {
  const miss = { ok: false as const, error: "NXDOMAIN" as const };
  return {
    txt: async (name) => (txt.has(name) ? { ok: true, ttl: 60, answers: txt.get(name)! } : miss),
    mx: async () => miss,
    a: async () => miss,
    aaaa: async () => miss,
    ptr: async () => miss,
  };
}

async function fresh() {
  const { database, dir } = await temporaryDatabase(T0);
  const clock = {
    t: T0,
    now() {
      return this.t;
    },
  };
  const zone = new Map<string, string[]>();
  const options = {
    store: new DomainStore(database),
    clock,
    resolver: () => fakeResolver(zone),
    hostname: "mx1.relay.test",
    sourceIp: "192.0.2.7",
    rotationGraceMs: 7 * DAY,
    checkIntervalMs: 600_000,
  };
  const service = new DomainService(options);
  const queue = new QueueStore(database, await BodySpool.open(join(dir, "spool")), clock, "test");
  const events = async () => (await queue.events.listEvents(0, 1000)).filter((e) => e.type === "domain_changed");
  const publishAll = async (domain: string) => {
    for (const r of (await service.get(domain))!.records) {
      if (r.required && r.type === "TXT") zone.set(r.name, [r.value]);
    }
  };
  return { service, options, clock, zone, events, publishAll };
}

describe("domain_changed events", () => {
  it("a recheck that finds a record gone raises one event; passing again raises another; nothing when nothing changes", async () => {
    const { service, clock, zone, events, publishAll } = await fresh();
    await service.add("sender.test", { selector: "s1" });
    const first = await service.check("sender.test");
    assert.equal(first.ok, false);
    assert.deepEqual(await events(), [], "the first check has nothing to compare with");

    await publishAll("sender.test");
    clock.t += 60_000;
    assert.equal((await service.check("sender.test")).ok, true);
    const passing = await events();
    assert.deepEqual(
      passing.map((e) => [e.data.record, e.data.name, e.data.before, e.data.after]),
      [
        ["spf", "sender.test", "fail", "pass"],
        ["dkim", "s1._domainkey.sender.test", "fail", "pass"],
        ["dmarc", "_dmarc.sender.test", "fail", "pass"],
      ],
      "records that failed and now pass",
    );
    for (const e of passing) {
      assert.equal(e.messageId, null);
      assert.equal(e.recipient, null);
      assert.equal(e.data.domain, "sender.test");
      assert.equal(e.data.fix, null);
    }

    clock.t += 60_000;
    await service.check("sender.test");
    assert.equal((await events()).length, 3, "an unchanged recheck raises nothing");

    // The operator's DNS loses the DKIM record: the periodic job notices.
    zone.delete("s1._domainkey.sender.test");
    clock.t += 600_000;
    await service.maintain();
    const all = await events();
    assert.equal(all.length, 4);
    const gone = all.at(-1)!;
    assert.equal(gone.type, "domain_changed");
    assert.equal(gone.at, clock.t);
    assert.equal(gone.messageId, null);
    assert.equal(gone.recipient, null);
    assert.deepEqual(
      { ...gone.data, fix: undefined },
      {
        domain: "sender.test",
        record: "dkim",
        name: "s1._domainkey.sender.test",
        before: "pass",
        after: "fail",
        fix: undefined,
        detail: "no DKIM record at s1._domainkey.sender.test",
        found: [],
        required: true,
        selector: "s1",
        algorithm: "rsa",
      },
    );
    assert.match(String(gone.data.fix), /^publish s1\._domainkey\.sender\.test\. TXT "v=DKIM1; k=rsa; p=/);

    // A changed SPF record that no longer covers the node.
    zone.set("sender.test", ["v=spf1 ip4:198.51.100.1 -all"]);
    clock.t += 600_000;
    await service.maintain();
    const spf = (await events()).at(-1)!;
    assert.deepEqual([spf.data.record, spf.data.before, spf.data.after], ["spf", "pass", "fail"]);
    assert.match(String(spf.data.detail), /SPF for 192\.0\.2\.7 is fail/);
    assert.match(String(spf.data.fix), /add ip4:192\.0\.2\.7/);
  });

  it("the periodic job rechecks every domain, not only those with keys waiting", async () => {
    const { service, clock, zone, events, publishAll } = await fresh();
    await service.add("a.test");
    await service.add("b.test");
    await publishAll("a.test");
    await publishAll("b.test");
    await service.maintain();
    assert.deepEqual(await events(), [], "first checks");
    zone.delete("_dmarc.b.test");
    clock.t += 600_000;
    await service.maintain();
    assert.deepEqual((await events()).map((e) => [e.data.domain, e.data.record, e.data.after]), [[
      "b.test",
      "dmarc",
      "fail",
    ]]);
  });

  it("of two checks compared with the same last check, only one writes the event", async () => {
    const { service, options, clock, zone, events, publishAll } = await fresh();
    await service.add("race.test", { selector: "s1" });
    await publishAll("race.test");
    await service.check("race.test");
    zone.delete("_dmarc.race.test");
    clock.t += 1_000;
    // A second node (or `relay domains check`) over the same database, checking at the same moment.
    const other = new DomainService(options);
    await Promise.all([service.check("race.test"), other.check("race.test")]);
    assert.equal((await events()).length, 1);
  });

  it("compares by purpose, name and selector; a record only in one check is no change", () => {
    const rec = (
      purpose: RecordCheck["purpose"],
      name: string,
      status: RecordCheck["status"],
      selector?: string,
    ): RecordCheck => ({
      purpose,
      name,
      required: true,
      status,
      found: [],
      detail: `${name} ${status}`,
      ...(status === "pass" ? {} : { fix: `fix ${name}` }),
      ...(selector ? { selector } : {}),
    });
    const report = (records: RecordCheck[]): DomainCheckReport => ({
      domain: "d.test",
      checkedAt: "",
      ok: true,
      records,
      verdict: [],
      visibleKeyIds: [],
    });
    const before = report([
      rec("dkim", "old._domainkey.d.test", "pass", "old"),
      rec("spf", "d.test", "warn"),
      rec("tls-rpt", "_smtp._tls.d.test", "pass"),
    ]);
    const after = report([
      rec("dkim", "new._domainkey.d.test", "fail", "new"),
      rec("spf", "d.test", "fail"),
      rec("tls-rpt", "_smtp._tls.d.test", "warn"),
    ]);
    assert.deepEqual(domainChanges(before, after).map((c) => [c.record, c.before, c.after, c.fix]), [[
      "tls-rpt",
      "pass",
      "warn",
      "fix _smtp._tls.d.test",
    ]]);
    assert.deepEqual(domainChanges(null, after), []);
    assert.deepEqual(domainChanges({ records: "junk" }, after), []);
    assert.deepEqual(domainChanges({ records: [{ purpose: "spf" }] }, after), []);
  });
});
