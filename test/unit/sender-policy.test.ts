import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DomainService } from "../../src/auth/domains.ts";
import { loadConfig } from "../../src/config/load.ts";
import { UsageError } from "../../src/core/errors.ts";
import type { Resolver } from "../../src/dns/resolver.ts";
import { aligned, returnPathDomainFor } from "../../src/ingress/return-path.ts";
import { MAX_LOCAL_PART, parseVerp, verpAddress } from "../../src/core/verp.ts";
import {
  decideSender,
  policyApplies,
  type SenderFacts,
  SenderPolicy,
  SenderRefused,
  type Submitter,
} from "../../src/ingress/sender-policy.ts";
import { Ingress, type Submission } from "../../src/ingress/submit.ts";
import type { Database } from "../../src/queue/database.ts";
import { DomainStore } from "../../src/queue/domains.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-sender-policy-");

const T0 = Date.UTC(2026, 4, 18, 12);

async function database(): Promise<Database & { spool: BodySpool }> {
  const { database: db, dir } = await temporaryDatabase(T0);
  return { ...db, spool: await BodySpool.open(join(dir, "spool")) };
}

const facts = (over: Partial<SenderFacts>): SenderFacts => ({
  mode: "verified",
  submitter: "api-key",
  fromDomain: "sender.test",
  grant: [],
  verified: true,
  ...over,
});

describe("sender policy: the decision table", () => {
  const submitters: Submitter[] = ["admin", "api-key", "smtp-user", "relay-network", "outside"];

  it("applies to API keys and SMTP AUTH users only, and only in verified mode", () => {
    const applies = submitters.filter((s) => policyApplies("verified", s));
    assert.deepEqual(applies, ["api-key", "smtp-user"]);
    assert.deepEqual(submitters.filter((s) => policyApplies("any", s)), []);
  });

  const table: [string, Partial<SenderFacts>, string | undefined][] = [
    ["verified domain, no grant limits", {}, undefined],
    ["verified domain inside the grant", { grant: ["sender.test", "other.test"] }, undefined],
    ["unverified domain", { verified: false }, "unverified"],
    ["verified domain outside the grant", { grant: ["other.test"] }, "outside-grant"],
    [
      "unverified domain outside the grant: the grant is named",
      { grant: ["other.test"], verified: false },
      "outside-grant",
    ],
    ["no From domain", { fromDomain: undefined }, "no-from-domain"],
    ["SMTP user, unverified", { submitter: "smtp-user", verified: false }, "unverified"],
    ["admin token, unverified", { submitter: "admin", verified: false }, undefined],
    ["trusted network, no From at all", { submitter: "relay-network", fromDomain: undefined }, undefined],
    ["mail from outside to the bounce domain", { submitter: "outside", verified: false, grant: ["x.test"] }, undefined],
    ["any: unverified", { mode: "any", verified: false }, undefined],
    ["any: outside the grant, no From", { mode: "any", grant: ["other.test"], fromDomain: undefined }, undefined],
  ];
  for (const [name, over, reason] of table) {
    it(name, () => {
      const decision = decideSender(facts(over));
      assert.equal(decision.allowed ? undefined : decision.reason, reason);
    });
  }

  it("says which domain and why, in words an SMTP client shows", () => {
    const d = decideSender(facts({ verified: false }));
    assert.ok(!d.allowed);
    assert.equal(d.text, "sender domain sender.test is not a verified sending domain");
    assert.equal(d.domain, "sender.test");
    const grant = decideSender(facts({ submitter: "smtp-user", grant: ["a.test"] }));
    assert.ok(!grant.allowed);
    assert.equal(grant.text, "sender domain sender.test is not allowed for this user");
  });

  it("asks the database only when the answer matters", async () => {
    const asked: string[] = [];
    const policy = new SenderPolicy({ mode: "verified", isVerified: async (d) => (asked.push(d), d === "ok.test") });
    let parsed = 0;
    const from = (d: string | undefined) => () => (parsed++, d);
    assert.equal((await policy.decide({ submitter: "admin", fromDomain: from("x.test") })).allowed, true);
    assert.equal((await policy.decide({ submitter: "relay-network", fromDomain: from("x.test") })).allowed, true);
    assert.equal(parsed, 0, "the From header is not even parsed for exempt submitters");
    assert.equal(
      (await policy.decide({ submitter: "api-key", grant: ["ok.test"], fromDomain: from("x.test") })).allowed,
      false,
    );
    assert.deepEqual(asked, [], "outside the grant: no lookup");
    assert.equal((await policy.decide({ submitter: "api-key", fromDomain: from("ok.test") })).allowed, true);
    assert.equal((await policy.decide({ submitter: "smtp-user", fromDomain: from("x.test") })).allowed, false);
    assert.deepEqual(asked, ["ok.test", "x.test"]);
  });
});

describe("return path: VERP at the bounce domain", () => {
  it("aligns by organizational domain (public suffix list)", () => {
    assert.equal(aligned("sender.example.test", "bounces.example.test"), true);
    assert.equal(aligned("example.test", "bounces.example.test"), true);
    assert.equal(aligned("news.example.co.uk", "bounces.example.co.uk"), true);
    assert.equal(aligned("example.co.uk", "bounces.other.co.uk"), false, "co.uk is a public suffix");
    assert.equal(aligned("sender.test", "bounces.relay.test"), false);
    assert.equal(aligned("Example.TEST", "bounces.example.test"), true);
  });

  it("rewrites only with a bounce domain, an aligned From, and a non-null sender", () => {
    const base = { fromDomain: "example.test", mailFrom: "a@example.test", bounceDomain: "bounces.example.test" };
    assert.equal(returnPathDomainFor(base), "bounces.example.test");
    assert.equal(returnPathDomainFor({ ...base, bounceDomain: undefined }), undefined);
    assert.equal(
      returnPathDomainFor({ ...base, fromDomain: "other.test" }),
      undefined,
      "alignment impossible: left as is",
    );
    assert.equal(returnPathDomainFor({ ...base, fromDomain: undefined }), undefined);
    assert.equal(returnPathDomainFor({ ...base, mailFrom: "" }), undefined, "a null sender stays null");
  });

  it("makes a short address that names the message and the recipient, and reads it back", () => {
    const id = "01JV8ZQ4XK7M2N3P4Q5R6S7T8V";
    const key = new Uint8Array(32).fill(7);
    const address = verpAddress(id, 123_456_789, "bounces.example.test", key);
    assert.match(
      address,
      new RegExp(`^b\\.${id}\\.${(123_456_789).toString(36)}\\.[a-z2-7]{10}@bounces\\.example\\.test$`),
    );
    const local = address.slice(0, address.indexOf("@"));
    assert.ok(local.length <= MAX_LOCAL_PART, `${local.length} octets`);
    assert.equal(verpAddress(id, Number.MAX_SAFE_INTEGER, "b.test", key).split("@")[0]!.length <= MAX_LOCAL_PART, true);
    const verified = { kind: "verified", messageId: id, recipientId: 123_456_789 };
    assert.deepEqual(parseVerp(address, "bounces.example.test", key), verified);
    assert.deepEqual(parseVerp(address.toLowerCase(), "Bounces.Example.Test", key), verified, "case-insensitive");
    assert.deepEqual(parseVerp(address, "other.test", key), { kind: "none" });
    assert.deepEqual(parseVerp("someone@bounces.example.test", "bounces.example.test", key), { kind: "none" });
  });

  it("refuses an address made up or altered without the key", () => {
    const id = "01JV8ZQ4XK7M2N3P4Q5R6S7T8V";
    const key = new Uint8Array(32).fill(7);
    const address = verpAddress(id, 42, "bounces.example.test", key);
    const otherKey = verpAddress(id, 42, "bounces.example.test", new Uint8Array(32).fill(8));
    assert.notEqual(otherKey, address, "the tag depends on the key");
    assert.equal(parseVerp(otherKey, "bounces.example.test", key).kind, "forged");
    // The same tag on another recipient of the same message: altered.
    const moved = address.replace(`.${(42).toString(36)}.`, `.${(43).toString(36)}.`);
    assert.deepEqual(parseVerp(moved, "bounces.example.test", key), { kind: "forged", messageId: id, recipientId: 43 });
    assert.deepEqual(
      parseVerp(`b.${id}.16@bounces.example.test`, "bounces.example.test", key),
      { kind: "none" },
      "untagged",
    );
  });
});

describe("Ingress: the policy before anything is stored, the return path decided once", () => {
  const body = (from: string) =>
    new TextEncoder().encode(`From: ${from}\r\nTo: r@dest.test\r\nSubject: s\r\n\r\nx\r\n`);
  const submission = (over: Partial<Submission>): Submission => ({
    mailFrom: "a@example.test",
    recipients: [{ address: "r@dest.test" }],
    body: body("A <a@example.test>"),
    source: "http",
    submitter: "api-key",
    ...over,
  });

  async function ingress(options: { mode?: "verified" | "any"; verified?: string[]; bounceDomain?: string } = {}) {
    const db = await database();
    const clock = { now: () => T0 };
    const store = new QueueStore(db, db.spool, clock, "node");
    const verified = new Set(options.verified ?? []);
    const ingress = new Ingress({
      store,
      clock,
      hostname: "relay.test",
      onEnqueued: () => {},
      senderPolicy: new SenderPolicy({ mode: options.mode ?? "verified", isVerified: async (d) => verified.has(d) }),
      bounceDomain: options.bounceDomain,
    });
    const count = async () => Number((await db.client.execute("SELECT COUNT(*) AS n FROM messages")).rows[0]!.n);
    const returnPath = async (id: string) =>
      (await db.client.execute({ sql: "SELECT mail_from, return_path_domain FROM messages WHERE id = ?", args: [id] }))
        .rows[0];
    return { ingress, count, returnPath };
  }

  it("refuses an unverified From domain with SenderRefused and stores nothing", async () => {
    const { ingress: i, count } = await ingress();
    await assert.rejects(
      i.submit(submission({})),
      (e: unknown) => e instanceof SenderRefused && e.decision.reason === "unverified",
    );
    await assert.rejects(
      i.submit(submission({ submitter: "smtp-user", body: new TextEncoder().encode("Subject: no from\r\n\r\nx\r\n") })),
      SenderRefused,
    );
    assert.equal(await count(), 0);
    await i.submit(submission({ submitter: "admin" }));
    await i.submit(submission({ source: "smtp", submitter: "relay-network" }));
    assert.equal(await count(), 2);
  });

  it("accepts a verified From domain, and anything with RELAY_SENDER_POLICY=any", async () => {
    const verified = await ingress({ verified: ["example.test"] });
    await verified.ingress.submit(submission({ senderDomains: ["example.test"] }));
    await assert.rejects(
      verified.ingress.submit(submission({ senderDomains: ["other.test"] })),
      /not allowed for this key/,
    );
    assert.equal(await verified.count(), 1);
    const any = await ingress({ mode: "any" });
    await any.ingress.submit(submission({ body: body("x@unknown.test") }));
    assert.equal(await any.count(), 1);
  });

  it("stores the bounce domain as the return path when From aligns; the envelope sender stays", async () => {
    const { ingress: i, returnPath } = await ingress({ mode: "any", bounceDomain: "bounces.example.test" });
    const aligned = await returnPath((await i.submit(submission({}))).id);
    assert.deepEqual([aligned?.mail_from, aligned?.return_path_domain], ["a@example.test", "bounces.example.test"]);
    const other = await returnPath((await i.submit(submission({ body: body("x@other.test") }))).id);
    assert.equal(other?.return_path_domain, null, "alignment impossible: left as is");
    const nullSender = await returnPath((await i.submit(submission({ mailFrom: "" }))).id);
    assert.equal(nullSender?.return_path_domain, null);
    const outside = await returnPath((await i.submit(submission({ source: "smtp", submitter: "outside" }))).id);
    assert.equal(outside?.return_path_domain, null, "mail from outside is not ours to rewrite");
  });
});

describe("DomainService: verified once a check sees the active key's record", () => {
  it("is not verified after add, becomes verified at the first passing check, and stays verified", async () => {
    const db = await database();
    const txt = new Map<string, string[]>();
    const miss = { ok: false as const, error: "NXDOMAIN" as const };
    const resolver: Resolver = {
      txt: async (name) => (txt.has(name) ? { ok: true, ttl: 60, answers: txt.get(name)! } : miss),
      mx: async () => miss,
      a: async () => miss,
      aaaa: async () => miss,
      ptr: async () => miss,
    };
    const clock = {
      t: T0,
      now() {
        return this.t;
      },
    };
    const service = new DomainService({
      store: new DomainStore(db),
      clock,
      resolver: () => resolver,
      hostname: "relay.test",
      rotationGraceMs: 86_400_000,
      checkIntervalMs: 600_000,
    });
    const view = await service.add("example.test");
    assert.equal(view.verifiedAt, null);
    assert.equal(await service.isVerified("example.test"), false);
    assert.equal(await service.isVerified("never-added.test"), false);

    await service.check("example.test");
    assert.equal(await service.isVerified("example.test"), false, "no record yet");

    const dkim = view.records.find((r) => r.purpose === "dkim")!;
    txt.set(dkim.name, [dkim.value]);
    clock.t += 60_000;
    const report = await service.check("example.test");
    assert.equal(report.ok, false, "SPF and DMARC are still missing: verification needs only the DKIM record");
    assert.equal(await service.isVerified("example.test"), true);
    assert.equal((await service.get("example.test"))!.verifiedAt, T0 + 60_000);

    txt.clear();
    clock.t += 60_000;
    await service.check("example.test");
    assert.equal(
      (await service.get("example.test"))!.verifiedAt,
      T0 + 60_000,
      "seen once is enough; the first time is kept",
    );
  });
});

describe("RELAY_SENDER_POLICY and the verified_at migration", () => {
  it("defaults to verified, takes any, and names the variable when invalid", () => {
    assert.equal(loadConfig({}, "host").senderPolicy, "verified");
    assert.equal(loadConfig({ RELAY_SENDER_POLICY: "any" }, "host").senderPolicy, "any");
    assert.throws(
      () => loadConfig({ RELAY_SENDER_POLICY: "open" }, "host"),
      (e: unknown) =>
        e instanceof UsageError &&
        e.problems.some((p) => p.startsWith("RELAY_SENDER_POLICY: expected verified or any")),
    );
  });

  it("marks a domain verified when its last check before the upgrade already passed an active key", async () => {
    const files = migrationFiles();
    const at = files.findIndex((f) => f.tag === "0005_sender_policy");
    assert.ok(at > 0);
    const { database: db } = await temporaryDatabase(T0, files.slice(0, at));
    const check = (status: string, keyState: string) =>
      JSON.stringify({ records: [{ purpose: "dkim", keyState, status }] });
    await db.client.batch(
      [
        {
          sql: "INSERT INTO sending_domains (domain, created_at, last_check, last_checked_at) VALUES (?, ?, ?, ?)",
          args: ["ok.test", T0, check("pass", "active"), T0 + 5],
        },
        {
          sql: "INSERT INTO sending_domains (domain, created_at, last_check, last_checked_at) VALUES (?, ?, ?, ?)",
          args: ["failing.test", T0, check("fail", "active"), T0 + 5],
        },
        {
          sql: "INSERT INTO sending_domains (domain, created_at, last_check, last_checked_at) VALUES (?, ?, ?, ?)",
          args: ["pending.test", T0, check("pass", "pending"), T0 + 5],
        },
        { sql: "INSERT INTO sending_domains (domain, created_at) VALUES (?, ?)", args: ["never.test", T0] },
      ],
      "write",
    );
    assert.deepEqual(await applyMigrations(db.client, files, T0), files.slice(at).map((f) => f.tag));
    const rows = (await db.client.execute("SELECT domain, verified_at FROM sending_domains ORDER BY domain")).rows;
    assert.deepEqual(
      rows.map((r) => [r.domain, r.verified_at === null ? null : Number(r.verified_at)]),
      [["failing.test", null], ["never.test", null], ["ok.test", T0 + 5], ["pending.test", null]],
    );
  });
});
