import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StsResult } from "../../src/delivery/mta-sts/index.ts";
import { type PlannerDeps, stsTlsFor } from "../../src/delivery/planner.ts";
import type { RouteResult } from "../../src/delivery/route.ts";
import type { Plan } from "../../src/delivery/plan.ts";
import type { TlsRule } from "../../src/delivery/tls-rule.ts";
import { stsPlanner } from "../helpers/planner.ts";

const MX: RouteResult = { kind: "hosts", hosts: [{ name: "mx.shared.test", addresses: ["127.0.0.1"], port: 25 }] };

const enforce = (mx: string[], id = "1"): StsResult => ({
  mode: "enforce",
  id,
  policy: { version: "STSv1", mode: "enforce", mx, maxAge: 86400 },
});
const testing = (mx: string[], id = "1"): StsResult => ({
  mode: "testing",
  id,
  policy: { version: "STSv1", mode: "testing", mx, maxAge: 86400 },
});

function planner(policies: Record<string, StsResult>, extra: Partial<PlannerDeps> = {}) {
  const { plan: planFor, looked } = stsPlanner(MX, policies, extra);
  const plan = (domain: string, rule: TlsRule = "recipient-policy") => planFor(domain, rule);
  return { plan, looked };
}

const keyOf = (plan: Plan) => {
  assert.equal(plan.kind, "destination");
  return (plan as Extract<Plan, { kind: "destination" }>).key;
};

describe("planner with MTA-STS", () => {
  it("domains without a policy share the MX site's key; an enforced one gets its own", async () => {
    const { plan } = planner({
      "strict.test": enforce(["mx.shared.test"]),
      "strict2.test": enforce(["mx.shared.test"], "other"),
    });
    const plain = keyOf(await plan("a.test"));
    assert.equal(plain, "mx.shared.test:25");
    assert.equal(keyOf(await plan("b.test")), plain);
    const strict = keyOf(await plan("strict.test"));
    assert.equal(strict, "mx.shared.test:25|sts:enforce:mx.shared.test");
    // Same requirements (mode, mx patterns), other id: one pool.
    assert.equal(keyOf(await plan("strict2.test")), strict);
  });

  it("the same id with different mx patterns, or another mode, never shares a key", async () => {
    const { plan } = planner({
      "one.test": enforce(["mx.shared.test"], "1"),
      "two.test": enforce(["*.shared.test"], "1"),
      "three.test": testing(["mx.shared.test"], "1"),
    });
    const keys = new Set([
      keyOf(await plan("one.test")),
      keyOf(await plan("two.test")),
      keyOf(await plan("three.test")),
    ]);
    assert.equal(keys.size, 3);
  });

  it("no lookup for the sandbox, static routes, or with MTA-STS off", async () => {
    const sandboxed = planner({}, { sandbox: true });
    assert.equal(keyOf(await sandboxed.plan("x.test")), "sandbox");
    assert.deepEqual(sandboxed.looked, []);

    const routed = planner({ "routed.test": enforce(["elsewhere.test"]) }, { staticRoute: (d) => d === "routed.test" });
    assert.equal(keyOf(await routed.plan("routed.test")), "mx.shared.test:25");
    assert.deepEqual(routed.looked, []);

    const off = planner({}, { mtaSts: undefined });
    assert.equal(keyOf(await off.plan("x.test")), "mx.shared.test:25");
  });

  it("no lookup when the route bounces or defers", async () => {
    const { plan, looked } = planner({}, {
      route: async () => ({ kind: "permanent", status: "5.1.2", reason: "no such domain" }),
    });
    assert.equal((await plan("gone.test")).kind, "bounce");
    assert.deepEqual(looked, []);
  });
});

describe("stsTlsFor: the policy in the transport's terms", () => {
  const logs: string[] = [];
  const log = (_level: string, message: string) => void logs.push(message);
  const host = (name: string) => ({ name, addresses: ["127.0.0.1"], port: 25 });

  it("enforce: a listed MX needs verified TLS for its name; an unlisted one is refused", () => {
    const tlsFor = stsTlsFor("strict.test", enforce(["*.strict.test"]), log);
    assert.deepEqual(tlsFor(host("MX1.Strict.Test.")), { mode: "required", servername: "mx1.strict.test" });
    const refused = tlsFor(host("mx.elsewhere.test"));
    assert.equal(refused.mode, "refuse");
    assert.match((refused as { reason: string }).reason, /does not match the MTA-STS policy/);
  });

  it("testing: opportunistic, what enforce would refuse audited for TLS reporting, the mismatch logged once", () => {
    logs.length = 0;
    const tlsFor = stsTlsFor("soft.test", testing(["mx.soft.test"]), log);
    const mismatch = tlsFor(host("mx.elsewhere.test"));
    assert.equal(mismatch.mode, "opportunistic");
    assert.equal(mismatch.mode === "opportunistic" && mismatch.audit?.servername, "mx.elsewhere.test");
    assert.match(
      (mismatch.mode === "opportunistic" && mismatch.audit?.refusal) || "",
      /mx\.elsewhere\.test does not match/,
    );
    assert.deepEqual(tlsFor(host("mx.elsewhere.test")), mismatch);
    assert.deepEqual(tlsFor(host("mx.soft.test")), { mode: "opportunistic", audit: { servername: "mx.soft.test" } });
    assert.equal(logs.length, 1);
  });

  it("none: opportunistic", () => {
    assert.deepEqual(stsTlsFor("x.test", { mode: "none" }, log)(host("mx.x.test")), { mode: "opportunistic" });
  });
});
