import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DomainService } from "../../src/auth/domains.ts";
import { headerValues } from "../../src/core/header-section.ts";
import { parseTagList } from "../../src/auth/dkim-keys.ts";
import type { RecordToPublish } from "../../src/auth/domain-records.ts";
import type { Resolver } from "../../src/dns/resolver.ts";
import { DomainStore } from "../../src/queue/domains.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-domains-");

const T0 = Date.UTC(2026, 4, 18, 12);
const DAY = 86_400_000;

/** A resolver over a plain map: name -> TXT texts / MX hosts. */
function fakeResolver(txt: Map<string, string[]>, mx = new Map<string, string[]>()): Resolver {
  const miss = { ok: false as const, error: "NXDOMAIN" as const };
  return {
    txt: async (name) => (txt.has(name) ? { ok: true, ttl: 60, answers: txt.get(name)! } : miss),
    mx: async (
      name,
    ) => (mx.has(name)
      ? { ok: true, ttl: 60, answers: mx.get(name)!.map((exchange) => ({ preference: 10, exchange })) }
      : miss),
    a: async () => miss,
    aaaa: async () => miss,
    ptr: async () => miss,
  };
}

async function fresh(options: { sourceIp?: string; bounceDomain?: string } = {}) {
  const { database } = await temporaryDatabase(T0);
  const clock = {
    t: T0,
    now() {
      return this.t;
    },
  };
  const zone = new Map<string, string[]>();
  const mx = new Map<string, string[]>();
  const service = new DomainService({
    store: new DomainStore(database),
    clock,
    resolver: () => fakeResolver(zone, mx),
    hostname: "mx1.relay.test",
    rotationGraceMs: 7 * DAY,
    checkIntervalMs: 600_000,
    keyCacheMs: 5_000,
    ...options,
  });
  /** Publish every required record the service lists (as an operator would). */
  const publishAll = async (domain: string) => {
    const view = (await service.get(domain))!;
    for (const r of view.records) {
      if (!r.required) continue;
      if (r.type === "TXT") {
        zone.set(r.name, [...(zone.get(r.name) ?? []).filter((t) => t !== r.value && r.purpose !== "dkim"), r.value]);
      }
      if (r.type === "MX") mx.set(r.name, [r.value.split(" ")[1]!]);
    }
  };
  return { service, clock, zone, mx, publishAll, database };
}

const message = (from: string) =>
  new TextEncoder().encode(`From: ${from}\r\nTo: x@dest.test\r\nSubject: s\r\n\r\nbody\r\n`);
const selectorsOf = (m: Uint8Array) => headerValues(m, "dkim-signature").map((value) => parseTagList(value).get("s"));

describe("sending domains", () => {
  it("adds a domain with active keys, lists the records, never a private key", async () => {
    const { service } = await fresh({ sourceIp: "192.0.2.7" });
    const view = await service.add("Example.COM", { algorithm: "both" });
    assert.equal(view.domain, "example.com");
    assert.deepEqual(view.keys.map((k) => [k.selector, k.algorithm, k.state]), [
      ["rsa20260518", "rsa", "active"],
      ["ed20260518", "ed25519", "active"],
    ]);
    const byPurpose: Record<string, RecordToPublish[] | undefined> = {};
    for (const r of view.records) (byPurpose[r.purpose] ??= []).push(r);
    assert.equal(byPurpose.spf?.[0]?.value, "v=spf1 ip4:192.0.2.7 ~all");
    assert.match(byPurpose.spf?.[0]?.note ?? "", /every relay node's IP/);
    assert.equal(byPurpose.dmarc?.[0]?.name, "_dmarc.example.com");
    assert.equal(byPurpose.dmarc?.[0]?.value, "v=DMARC1; p=none; rua=mailto:dmarc@example.com");
    assert.equal(byPurpose["tls-rpt"]?.[0]?.value, "v=TLSRPTv1; rua=mailto:tlsrpt@example.com");
    assert.equal(byPurpose["tls-rpt"]?.[0]?.required, false);
    assert.equal(byPurpose["mta-sts"]?.[0]?.required, false);
    assert.deepEqual(byPurpose.dkim?.map((r) => r.name), [
      "rsa20260518._domainkey.example.com",
      "ed20260518._domainkey.example.com",
    ]);
    assert.equal(byPurpose["return-path-mx"], undefined, "no return path without RELAY_BOUNCE_DOMAIN");
    assert.doesNotMatch(JSON.stringify(await service.list()), /PRIVATE KEY/);
    await assert.rejects(service.add("example.com"), /already added/);
    await assert.rejects(service.add("not a domain"), /not valid/);
    await assert.rejects(service.add("example.org", { algorithm: "dsa" }), /not valid/);
  });

  it("lists return-path records with RELAY_BOUNCE_DOMAIN and an IPv6 SPF mechanism", async () => {
    const { service } = await fresh({ sourceIp: "2001:db8::25", bounceDomain: "bounces.example.com" });
    const view = await service.add("example.com");
    const rp = view.records.filter((r) => r.purpose.startsWith("return-path"));
    assert.deepEqual(rp.map((r) => [r.name, r.type, r.value]), [
      ["bounces.example.com", "MX", "10 mx1.relay.test"],
      ["bounces.example.com", "TXT", "v=spf1 ip6:2001:db8::25 ~all"],
    ]);
  });

  it("signs mail from the exact domain only, within the submitter's grant", async () => {
    const { service } = await fresh();
    await service.add("sender.test", { selector: "s1" });
    assert.deepEqual(selectorsOf(await service.sign(message("a@sender.test"))), ["s1"]);
    assert.deepEqual(selectorsOf(await service.sign(message("a@news.sender.test"))), [], "no key for a subdomain");
    assert.deepEqual(selectorsOf(await service.sign(message("a@other.test"))), []);
    assert.deepEqual(
      selectorsOf(await service.sign(message("a@sender.test"), ["other.test"])),
      [],
      "outside the grant",
    );
    assert.deepEqual(selectorsOf(await service.sign(message("a@sender.test"), ["sender.test"])), ["s1"]);
  });

  it("picks up keys added elsewhere once its short cache expires", async () => {
    const { service, clock, database } = await fresh();
    assert.deepEqual(selectorsOf(await service.sign(message("a@late.test"))), []);
    const other = new DomainService({
      store: new DomainStore(database),
      clock,
      resolver: () => fakeResolver(new Map()),
      hostname: "h",
      rotationGraceMs: DAY,
      checkIntervalMs: DAY,
    });
    await other.add("late.test", { selector: "k1" });
    assert.deepEqual(selectorsOf(await service.sign(message("a@late.test"))), [], "still cached");
    clock.t += 5_000;
    assert.deepEqual(selectorsOf(await service.sign(message("a@late.test"))), ["k1"]);
  });

  it("rotates: the new key signs only once DNS shows it; the old record stays needed for the grace period", async () => {
    const { service, clock, zone, publishAll } = await fresh({ sourceIp: "192.0.2.7" });
    await service.add("sender.test", { selector: "old" });
    await publishAll("sender.test");
    const first = await service.check("sender.test");
    assert.equal(first.ok, true, JSON.stringify(first.records, null, 1));

    clock.t += DAY;
    const rotation = await service.rotate("sender.test");
    assert.deepEqual(rotation.keys.map((k) => [k.selector, k.state]), [["rsa20260519", "pending"]]);
    assert.equal(rotation.check.ok, true, "a pending key's missing record is a warning, not a failure");
    const pendingCheck = rotation.check.records.find((r) => r.selector === "rsa20260519")!;
    assert.equal(pendingCheck.status, "warn");
    assert.match(pendingCheck.fix ?? "", /^publish rsa20260519\._domainkey\.sender\.test\. TXT "v=DKIM1; k=rsa; p=/);
    clock.t += 10_000;
    assert.deepEqual(selectorsOf(await service.sign(message("a@sender.test"))), ["old"], "still the old key");
    const again = await service.rotate("sender.test");
    assert.deepEqual(again.keys.map((k) => k.selector), ["rsa20260519"], "a second rotate keeps the pending key");

    await publishAll("sender.test");
    await service.maintain(); // the periodic check
    const view = (await service.get("sender.test"))!;
    assert.deepEqual(view.keys.map((k) => [k.selector, k.state]), [["old", "retiring"], ["rsa20260519", "active"]]);
    const old = view.records.find((r) => r.selector === "old")!;
    assert.equal(old.neededUntil, new Date(clock.t + 7 * DAY).toISOString());
    assert.match(old.note ?? "", /still needed until/);
    assert.deepEqual(
      selectorsOf(await service.sign(message("a@sender.test"))),
      ["rsa20260519"],
      "switched without waiting for the cache",
    );
    assert.equal(view.lastCheck?.ok, true);

    clock.t += 7 * DAY;
    await service.maintain();
    const later = (await service.get("sender.test"))!;
    assert.deepEqual(later.keys.map((k) => [k.selector, k.state]), [["old", "retired"], ["rsa20260519", "active"]]);
    assert.equal(later.records.some((r) => r.selector === "old"), false, "a retired key's record is no longer listed");
    assert.ok(zone.size > 0);
  });

  it("keygen: the first key of an algorithm signs at once, a second one waits for DNS", async () => {
    const { service } = await fresh();
    const first = await service.keygen("kg.test", { algorithm: "ed25519", selector: "e1" });
    assert.equal(first.key.state, "active");
    assert.match(first.record.value, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    const second = await service.keygen("kg.test", { algorithm: "ed25519" });
    assert.equal(second.key.state, "pending");
    await assert.rejects(service.keygen("kg.test", { selector: "e1" }), /already has a key with selector e1/);
  });

  it("checks DNS and explains what a receiver concludes", async () => {
    const { service, zone, mx, publishAll } = await fresh({
      sourceIp: "192.0.2.7",
      bounceDomain: "bounces.example.com",
    });
    await service.add("example.com", { selector: "s1" });
    const empty = await service.check("example.com");
    assert.equal(empty.ok, false);
    const status = Object.fromEntries(empty.records.map((r) => [r.name + " " + r.purpose, r.status]));
    assert.equal(status["example.com spf"], "fail");
    assert.equal(status["s1._domainkey.example.com dkim"], "fail");
    assert.equal(status["_dmarc.example.com dmarc"], "fail");
    assert.equal(status["_smtp._tls.example.com tls-rpt"], "warn", "optional records only warn");
    assert.match(empty.verdict.join("\n"), /DKIM fails/);

    await publishAll("example.com");
    const good = await service.check("example.com");
    assert.equal(good.ok, true, JSON.stringify(good.records, null, 1));
    const verdict = good.verdict.join("\n");
    assert.match(
      verdict,
      /SPF: a receiver that gets mail from 192\.0\.2\.7 with an envelope sender at bounces\.example\.com concludes SPF pass/,
    );
    assert.match(verdict, /DKIM pass, aligned with the From domain/);
    assert.match(verdict, /shares example\.com's organizational domain/);
    assert.match(verdict, /DMARC: pass \(DKIM aligned and SPF aligned\); p=none/);

    zone.set("example.com", ["v=spf1 ip4:198.51.100.1 ~all"]);
    const softfail = await service.check("example.com");
    const spf = softfail.records.find((r) => r.purpose === "spf")!;
    assert.equal(spf.status, "fail");
    assert.match(spf.detail, /softfail/);
    assert.match(spf.fix ?? "", /add ip4:192\.0\.2\.7/);

    zone.set("example.com", ["v=spf1 ip4:192.0.2.7 ~all", "v=spf1 -all"]);
    assert.match(
      (await service.check("example.com")).records.find((r) => r.purpose === "spf")!.detail,
      /2 SPF records/,
    );
    mx.delete("bounces.example.com");
    assert.equal(
      (await service.check("example.com")).records.find((r) => r.purpose === "return-path-mx")!.status,
      "fail",
    );
    assert.equal((await service.get("example.com"))!.lastCheck?.ok, false, "the last check is kept");
  });

  it("says SPF cannot be evaluated without RELAY_SOURCE_IP", async () => {
    const { service, publishAll } = await fresh();
    await service.add("example.com");
    await publishAll("example.com");
    const report = await service.check("example.com");
    assert.equal(report.records.find((r) => r.purpose === "spf")!.status, "warn");
    assert.match(report.verdict[0]!, /cannot tell: RELAY_SOURCE_IP is not set/);
  });
});
