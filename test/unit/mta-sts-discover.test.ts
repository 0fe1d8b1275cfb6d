import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createMtaSts } from "../../src/delivery/mta-sts/discover.ts";
import type { FetchResult } from "../../src/delivery/mta-sts/fetch.ts";
import type { Policy } from "../../src/delivery/mta-sts/policy.ts";
import type { DnsResult } from "../../src/dns/types.ts";

const DAY = 86_400;

function policy(mode: Policy["mode"], maxAge = DAY, mx = ["*.mx.example.test"]): Policy {
  return { version: "STSv1", mode, mx, maxAge };
}

/** A fake clock, a TXT table you can change, and a fetch that counts calls and answers from a queue. */
function world() {
  let now = 1_000_000;
  const txt = new Map<string, DnsResult<string[]>>();
  const fetched: string[] = [];
  let next: FetchResult | (() => Promise<FetchResult>) = { ok: false, reason: "nothing set" };
  const sts = createMtaSts({
    clock: { now: () => now },
    resolver: {
      txt: async (name) => txt.get(name) ?? { ok: false, error: "NXDOMAIN" },
      a: async () => ({ ok: false, error: "NXDOMAIN" }),
      aaaa: async () => ({ ok: false, error: "NXDOMAIN" }),
    },
    fetchPolicy: async (domain) => {
      fetched.push(domain);
      return typeof next === "function" ? next() : next;
    },
  });
  return {
    sts,
    fetched,
    advance: (seconds: number) => {
      now += seconds * 1000;
    },
    record: (domain: string, value: DnsResult<string[]> | string) =>
      txt.set(`_mta-sts.${domain}`, typeof value === "string" ? { ok: true, answers: [value], ttl: 300 } : value),
    serve: (result: FetchResult | (() => Promise<FetchResult>)) => {
      next = result;
    },
  };
}

describe("MTA-STS discovery and the policy cache (RFC 8461 3, 5.1)", () => {
  test("no TXT record and nothing cached: none, without fetching", async () => {
    const w = world();
    assert.deepEqual(await w.sts.policyFor("example.test"), { mode: "none" });
    w.record("example.test", { ok: false, error: "NODATA" });
    assert.deepEqual(await w.sts.policyFor("example.test"), { mode: "none" });
    w.record("example.test", "v=spf1 -all");
    const invalid = await w.sts.policyFor("example.test");
    assert.equal(invalid.mode, "none");
    assert.match(invalid.problem ?? "", /v=STSv1/);
    assert.deepEqual(w.fetched, []);
  });

  test("a policy is fetched once and cached by id until max_age runs out", async () => {
    const w = world();
    w.record("example.test", "v=STSv1; id=one");
    w.serve({ ok: true, policy: policy("enforce", 3600) });
    const first = await w.sts.policyFor("Example.Test.");
    assert.deepEqual(first, { mode: "enforce", policy: policy("enforce", 3600), id: "one" });
    w.advance(3599);
    assert.deepEqual(await w.sts.policyFor("example.test"), first);
    assert.deepEqual(w.fetched, ["example.test"]);
    w.advance(1); // max_age reached: fetched again although the id did not change
    assert.deepEqual(await w.sts.policyFor("example.test"), first);
    assert.deepEqual(w.fetched, ["example.test", "example.test"]);
  });

  test("a new id in the TXT record fetches again and replaces the cached policy", async () => {
    const w = world();
    w.record("example.test", "v=STSv1; id=one");
    w.serve({ ok: true, policy: policy("testing") });
    assert.equal((await w.sts.policyFor("example.test")).mode, "testing");
    w.record("example.test", "v=STSv1; id=two");
    w.serve({ ok: true, policy: policy("enforce") });
    const second = await w.sts.policyFor("example.test");
    assert.ok(second.mode === "enforce" && second.id === "two");
    assert.equal(w.fetched.length, 2);
    assert.deepEqual(await w.sts.policyFor("example.test"), second);
    assert.equal(w.fetched.length, 2);
  });

  test("a failed fetch keeps the cached, unexpired policy; once it expires, none", async () => {
    const w = world();
    w.record("example.test", "v=STSv1; id=one");
    w.serve({ ok: true, policy: policy("enforce", DAY) });
    await w.sts.policyFor("example.test");
    w.record("example.test", "v=STSv1; id=two");
    w.serve({ ok: false, reason: "HTTP status 500, not 200" });
    const kept = await w.sts.policyFor("example.test");
    assert.ok(kept.mode === "enforce" && kept.id === "one", JSON.stringify(kept));
    assert.match(kept.problem ?? "", /id two.*HTTP status 500/);
    w.advance(DAY);
    const expired = await w.sts.policyFor("example.test");
    assert.equal(expired.mode, "none");
    assert.match(expired.problem ?? "", /HTTP status 500/);
  });

  test("the TXT record disappearing or DNS failing keeps the cached policy until max_age", async () => {
    const w = world();
    w.record("example.test", "v=STSv1; id=one");
    w.serve({ ok: true, policy: policy("enforce", DAY) });
    await w.sts.policyFor("example.test");
    w.record("example.test", { ok: false, error: "NXDOMAIN" });
    const gone = await w.sts.policyFor("example.test");
    assert.ok(gone.mode === "enforce" && gone.problem === undefined);
    w.record("example.test", { ok: false, error: "TIMEOUT", detail: "no answer" });
    const timeout = await w.sts.policyFor("example.test");
    assert.ok(timeout.mode === "enforce");
    assert.match(timeout.problem ?? "", /TXT lookup failed: TIMEOUT \(no answer\)/);
    w.record("example.test", { ok: true, answers: ["v=STSv1; id=a", "v=STSv1; id=b"], ttl: 60 });
    assert.equal(
      (await w.sts.policyFor("example.test")).mode,
      "enforce",
      "two records: no live policy, the cached one applies",
    );
    w.advance(DAY);
    w.record("example.test", { ok: false, error: "SERVFAIL" });
    const after = await w.sts.policyFor("example.test");
    assert.equal(after.mode, "none");
    assert.match(after.problem ?? "", /SERVFAIL/);
    assert.equal(w.fetched.length, 1);
  });

  test("a failed fetch without a cached policy: none, and not retried for the same id until fetchRetryMs", async () => {
    const w = world();
    w.record("example.test", "v=STSv1; id=one");
    w.serve({ ok: false, reason: "certificate not valid" });
    const first = await w.sts.policyFor("example.test");
    assert.equal(first.mode, "none");
    assert.match(first.problem ?? "", /certificate not valid/);
    w.advance(60);
    assert.equal((await w.sts.policyFor("example.test")).mode, "none");
    assert.equal(w.fetched.length, 1, "rate-limited (RFC 8461 3.3)");
    w.record("example.test", "v=STSv1; id=two");
    w.serve({ ok: true, policy: policy("enforce") });
    assert.equal((await w.sts.policyFor("example.test")).mode, "enforce", "a new id is fetched at once");
    assert.equal(w.fetched.length, 2);
  });

  test("after fetchRetryMs the same id is fetched again", async () => {
    const w = world();
    w.record("example.test", "v=STSv1; id=one");
    w.serve({ ok: false, reason: "timed out" });
    await w.sts.policyFor("example.test");
    w.advance(5 * 60);
    w.serve({ ok: true, policy: policy("testing") });
    assert.equal((await w.sts.policyFor("example.test")).mode, "testing");
    assert.equal(w.fetched.length, 2);
  });

  test("a fetched policy in mode none is cached and means none", async () => {
    const w = world();
    w.record("example.test", "v=STSv1; id=off");
    w.serve({ ok: true, policy: policy("none", DAY, []) });
    assert.deepEqual(await w.sts.policyFor("example.test"), { mode: "none" });
    assert.deepEqual(await w.sts.policyFor("example.test"), { mode: "none" });
    assert.equal(w.fetched.length, 1);
  });

  test("concurrent lookups share one fetch; a throwing fetcher is a failure value", async () => {
    const w = world();
    w.record("example.test", "v=STSv1; id=one");
    let release: (r: FetchResult) => void = () => {};
    w.serve(() => new Promise<FetchResult>((resolve) => (release = resolve)));
    const pending = Promise.all([
      w.sts.policyFor("example.test"),
      w.sts.policyFor("example.test"),
      w.sts.policyFor("example.test"),
    ]);
    while (w.fetched.length === 0) await new Promise((r) => setImmediate(r));
    release({ ok: true, policy: policy("enforce") });
    const results = await pending;
    assert.deepEqual(results.map((r) => r.mode), ["enforce", "enforce", "enforce"]);
    assert.equal(w.fetched.length, 1);

    w.record("other.test", "v=STSv1; id=x");
    w.serve(() => Promise.reject(new Error("boom")));
    const thrown = await w.sts.policyFor("other.test");
    assert.equal(thrown.mode, "none");
    assert.match(thrown.problem ?? "", /boom/);
  });

  test("the cache holds at most maxEntries domains", async () => {
    const now = 0;
    const fetched: string[] = [];
    const sts = createMtaSts({
      clock: { now: () => now },
      maxEntries: 2,
      resolver: {
        txt: async () => ({ ok: true, answers: ["v=STSv1; id=1"], ttl: 300 }),
        a: async () => ({ ok: false, error: "NXDOMAIN" }),
        aaaa: async () => ({ ok: false, error: "NXDOMAIN" }),
      },
      fetchPolicy: async (domain) => {
        fetched.push(domain);
        return { ok: true, policy: policy("enforce") };
      },
    });
    for (const d of ["a.test", "b.test", "c.test", "b.test", "c.test", "a.test"]) await sts.policyFor(d);
    assert.deepEqual(fetched, ["a.test", "b.test", "c.test", "a.test"], "a.test was evicted by c.test");
  });
});
