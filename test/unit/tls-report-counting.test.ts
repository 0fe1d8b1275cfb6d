import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { systemClock } from "../../src/core/clock.ts";
import { reply } from "../../src/core/reply.ts";
import { classifyReply } from "../../src/delivery/classify.ts";
import { Destination } from "../../src/delivery/destination.ts";
import type { StsResult } from "../../src/delivery/mta-sts/index.ts";
import { createPlanner } from "../../src/delivery/planner.ts";
import type { RouteResult } from "../../src/delivery/route.ts";
import { SandboxTransport } from "../../src/delivery/sandbox.ts";
import type { Plan } from "../../src/delivery/plan.ts";
import { TlsFallbackMemory } from "../../src/delivery/tls-memory.ts";
import type { ReportPolicy } from "../../src/delivery/tls-report/policy.ts";
import type { TlsSession } from "../../src/delivery/tls-report/session.ts";
import type { TlsRule } from "../../src/delivery/tls-rule.ts";
import {
  type Channel,
  DestinationUnreachable,
  type RecipientResult,
  type Transport,
  type Work,
} from "../../src/delivery/work.ts";
import { shippedShaping } from "../../src/shaping/shipped.ts";

/**
 * Which sessions TLS reporting counts, and for whom: the planner says which
 * domains are reported under which policy, the destination counts each
 * connection once per such domain whose mail it carries (RFC 8460 4.2 counts
 * sessions, not messages).
 */

const MX: RouteResult = { kind: "hosts", hosts: [{ name: "mx.shared.test", addresses: ["127.0.0.1"], port: 25 }] };
const enforce: StsResult = {
  mode: "enforce",
  id: "1",
  policy: { version: "STSv1", mode: "enforce", mx: ["mx.shared.test"], maxAge: 86400 },
};

function planner(options: { sandbox?: boolean; staticRoute?: boolean } = {}) {
  const planFor = createPlanner({
    route: async () => MX,
    sandbox: options.sandbox ?? false,
    sandboxTransport: new SandboxTransport(),
    smtp: { heloName: "relay.test", tlsMemory: new TlsFallbackMemory(systemClock) },
    shaping: () => shippedShaping().rules,
    mtaSts: { policyFor: async (domain) => (domain === "strict.test" ? enforce : { mode: "none" }) },
    staticRoute: () => options.staticRoute ?? false,
  });
  return (domain: string, rule: TlsRule = "recipient-policy") => planFor(domain, rule);
}

const reportedAs = (plan: Plan) => (plan.kind === "destination" ? plan.tlsReport : undefined);

describe("the planner: which mail's sessions are reported, under which policy", () => {
  it("mail under the recipient's own policy: its MTA-STS policy, or no-policy-found", async () => {
    const plan = planner();
    const strict = reportedAs(await plan("strict.test"));
    assert.equal(strict?.type, "sts");
    assert.deepEqual(strict && "mxHost" in strict ? strict.mxHost : undefined, ["mx.shared.test"]);
    assert.deepEqual(reportedAs(await plan("plain.test")), { type: "no-policy-found" });
  });

  it("not reported: TLS-Required: No mail (the reports themselves, RFC 8460 3), REQUIRETLS mail, static routes, the sandbox", async () => {
    assert.equal(reportedAs(await planner()("strict.test", "opportunistic")), undefined);
    assert.equal(reportedAs(await planner()("strict.test", "requiretls")), undefined);
    assert.equal(reportedAs(await planner({ staticRoute: true })("strict.test")), undefined);
    assert.equal(reportedAs(await planner({ sandbox: true })("strict.test")), undefined);
  });
});

const success: TlsSession = { mxHost: "mx.shared.test", receivingIp: "127.0.0.1" };
const mismatch: TlsSession = {
  mxHost: "mx.bad.test",
  receivingIp: "127.0.0.1",
  failure: { resultType: "certificate-host-mismatch" },
};
const sts: ReportPolicy = { type: "sts", policyString: ["version: STSv1"], mxHost: ["mx.shared.test"] };
const none: ReportPolicy = { type: "no-policy-found" };

function work(id: string, reported: Record<string, ReportPolicy>, domains = Object.keys(reported)): Work {
  return {
    messageId: id,
    mailFrom: "a@sender.test",
    claims: domains.map((domain) => ({ address: `u@${domain}`, domain }) as Work["claims"][number]),
    tlsReport: new Map(Object.entries(reported)),
  };
}

function destination(transport: Transport, counted: [string, string, string[]][], messagesPerConnection = 10) {
  const reports: RecipientResult[][] = [];
  const target = new Destination("key", {
    transport,
    clock: systemClock,
    limits: { maxConnections: 1, maxMessagesPerConnection: messagesPerConnection, idleMs: 60_000 },
    loadPayload: async (w) => ({
      messageId: w.messageId,
      mailFrom: w.mailFrom,
      recipients: w.claims.map((c) => c.address),
      body: new Uint8Array(),
    }),
    report: (_work, results) => reports.push(results),
    backoff: () => 3_600_000,
    postpone: () => assert.fail("nothing is paced here"),
    onError: (error) => assert.fail(String(error)),
    countTlsSessions: (domain, policy, sessions) =>
      counted.push([domain, policy.type, sessions.map((s) => s.failure?.resultType ?? "success")]),
  });
  return { target, reports };
}

const channel = (sessions: readonly TlsSession[]): Channel => ({
  remoteMta: "mx.shared.test",
  usable: true,
  tlsSessions: sessions,
  send: async (payload) =>
    payload.recipients.map((address) => ({
      address,
      reply: reply(250, "2.0.0", "ok"),
      ...classifyReply(reply(250, "2.0.0", "ok")),
    })),
  quit: async () => undefined,
  close: () => undefined,
});

const until = async (done: () => boolean) => {
  while (!done()) await new Promise((r) => setTimeout(r, 1));
};

describe("the destination: a connection counts once per reported domain whose mail it carries", () => {
  it("four messages over one connection, three to one domain: one session each for the two domains", async () => {
    const counted: [string, string, string[]][] = [];
    let opened = 0;
    const transport: Transport = {
      open: async () => {
        opened++;
        return channel([mismatch, success]);
      },
    };
    const { target, reports } = destination(transport, counted);
    target.enqueue(work("m1", { "strict.test": sts }));
    target.enqueue(work("m2", { "strict.test": sts, "plain.test": none }));
    target.enqueue(work("m3", { "strict.test": sts }));
    // A message whose domain is not reported (TLS-Required: No) counts for nobody.
    target.enqueue(work("m4", {}, ["optout.test"]));
    await until(() => reports.length === 4);
    assert.equal(opened, 1);
    assert.deepEqual(counted, [
      ["strict.test", "sts", ["certificate-host-mismatch", "success"]],
      ["plain.test", "no-policy-found", ["certificate-host-mismatch", "success"]],
    ]);
  });

  it("a new connection counts again", async () => {
    const counted: [string, string, string[]][] = [];
    const { target, reports } = destination({ open: async () => channel([success]) }, counted, 1);
    target.enqueue(work("m1", { "strict.test": sts }));
    await until(() => reports.length === 1);
    target.enqueue(work("m2", { "strict.test": sts }));
    await until(() => reports.length === 2);
    assert.deepEqual(counted, [
      ["strict.test", "sts", ["success"]],
      ["strict.test", "sts", ["success"]],
    ]);
  });

  it("a destination that cannot be reached counts its failed sessions once for each domain that waited", async () => {
    const counted: [string, string, string[]][] = [];
    const refusal = reply(451, "4.7.5", "TLS required by MTA-STS policy");
    const { target, reports } = destination(
      {
        open: async () =>
          Promise.reject(
            new DestinationUnreachable(refusal, classifyReply(refusal), "mx.bad.test", [mismatch, mismatch]),
          ),
      },
      counted,
    );
    target.enqueue(work("m1", { "strict.test": sts }));
    await until(() => reports.length === 1);
    assert.deepEqual(counted, [["strict.test", "sts", ["certificate-host-mismatch", "certificate-host-mismatch"]]]);
  });
});
