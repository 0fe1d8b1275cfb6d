import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  authservId,
  type InboundAuth,
  mailauthResolver,
  removeForgedAuthResults,
} from "../../src/auth/inbound/index.ts";
import { parseCidr } from "../../src/core/cidr.ts";
import type { DnsResult } from "../../src/dns/types.ts";
import { AuthThrottle } from "../../src/ingress/auth-throttle.ts";
import { smtpHooks } from "../../src/ingress/smtp-hooks.ts";
import type { Ingress, Submission } from "../../src/ingress/submit.ts";
import type { Envelope, SessionInfo } from "../../src/smtp/server/index.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function harness() {
  const submitted: Submission[] = [];
  const stamped: { clientIp: string; heloName?: string; mailFrom: string | null }[] = [];
  const ingress = { submit: async (s: Submission) => (submitted.push(s), "id1") } as unknown as Ingress;
  const inbound: InboundAuth = {
    async stamp(message, envelope) {
      stamped.push(envelope);
      const results = {} as never;
      return {
        message: encode(`Authentication-Results: relay.test; spf=pass\r\n${decode(message)}`),
        results,
        record: { spf: { result: "pass" } },
        sealed: false,
      };
    },
  };
  const hooks = smtpHooks({
    ingress,
    policy: {
      relayNetworks: [parseCidr("10.0.0.0/8")!],
      bounceDomain: "bounces.relay.test",
      literals: { routes: [], ownAddresses: () => [] },
    },
    authenticator: { authenticate: async () => undefined },
    throttle: new AuthThrottle({ now: () => 0 }),
    inbound,
  });
  return { hooks, submitted, stamped };
}

const session = (remoteAddress: string, user?: string): SessionInfo => ({
  id: "s1",
  remoteAddress,
  remotePort: 40000,
  localAddress: "127.0.0.1",
  localPort: 25,
  secure: false,
  heloName: "mta.sender.test",
  user,
});
const envelope = (mailFrom: Envelope["mailFrom"]): Envelope => ({
  mailFrom,
  mailParams: {},
  recipients: [{ mailbox: { local: "x", domain: "bounces.relay.test" }, params: {} }],
});

describe("inbound checks in the SMTP DATA hook", () => {
  test("mail from outside the relay networks, unauthenticated: checked, stamped, results passed to ingress", async () => {
    const { hooks, submitted, stamped } = harness();
    const answer = await hooks.onData(
      session("198.51.100.5"),
      envelope({ local: "a", domain: "sender.test" }),
      encode("Subject: x\r\n\r\nhi\r\n"),
    );
    assert.equal(answer.code, 250);
    assert.deepEqual(stamped, [{ clientIp: "198.51.100.5", heloName: "mta.sender.test", mailFrom: "a@sender.test" }]);
    assert.match(decode(submitted[0]!.body), /^Authentication-Results: relay\.test; spf=pass\r\nSubject: x/);
    assert.deepEqual(submitted[0]!.authResults, { spf: { result: "pass" } });
  });

  test("the null reverse-path reaches the checks as null", async () => {
    const { hooks, stamped } = harness();
    await hooks.onData(session("198.51.100.5"), envelope(null), encode("Subject: x\r\n\r\nhi\r\n"));
    assert.equal(stamped[0]!.mailFrom, null);
  });

  test("relay networks and authenticated users are our own submitters: not checked", async () => {
    const { hooks, submitted, stamped } = harness();
    await hooks.onData(
      session("10.1.2.3"),
      envelope({ local: "a", domain: "sender.test" }),
      encode("Subject: x\r\n\r\nhi\r\n"),
    );
    await hooks.onData(
      session("198.51.100.5", "alice"),
      envelope({ local: "a", domain: "sender.test" }),
      encode("Subject: y\r\n\r\nhi\r\n"),
    );
    assert.equal(stamped.length, 0);
    assert.deepEqual(submitted.map((s) => [decode(s.body).slice(0, 10), s.authResults]), [["Subject: x", undefined], [
      "Subject: y",
      undefined,
    ]]);
  });
});

describe("Authentication-Results from outside (RFC 8601 5)", () => {
  test("authserv-id: the first token, comments and version skipped, case-insensitive", () => {
    assert.equal(authservId(" Relay.Test; spf=pass"), "relay.test");
    assert.equal(authservId(" (comment) relay.test 1; none"), "relay.test");
    assert.equal(authservId("relay.test.;none"), "relay.test");
  });

  test("fields claiming our hostname are removed, folded lines and all; others stay", () => {
    const text = "Received: from a\r\n\tby b\r\n" +
      "Authentication-Results: relay.test;\r\n\tdkim=pass header.d=bank.test\r\n" +
      "Authentication-Results: other.test; spf=fail\r\n" +
      "ARC-Authentication-Results: i=1; relay.test; spf=pass\r\n" +
      "authentication-results: RELAY.TEST; dmarc=pass\r\n" +
      "Subject: Authentication-Results: relay.test; in the subject\r\n\r\n" +
      "Authentication-Results: relay.test; in the body\r\n";
    const { message, removed } = removeForgedAuthResults(encode(text), "relay.test");
    assert.equal(removed, 2);
    assert.equal(
      decode(message),
      "Received: from a\r\n\tby b\r\n" +
        "Authentication-Results: other.test; spf=fail\r\n" +
        "ARC-Authentication-Results: i=1; relay.test; spf=pass\r\n" +
        "Subject: Authentication-Results: relay.test; in the subject\r\n\r\n" +
        "Authentication-Results: relay.test; in the body\r\n",
    );
  });
});

describe("our resolver as mailauth's resolver(name, rrtype)", () => {
  const ok = <T>(answers: T[]): DnsResult<T[]> => ({ ok: true, answers, ttl: 60 });
  const fails = (error: "NXDOMAIN" | "NODATA" | "SERVFAIL" | "TIMEOUT" | "REFUSED"): DnsResult<never[]> => ({
    ok: false,
    error,
  });
  const resolve = mailauthResolver({
    txt: async (
      name,
    ) => (name === "t.test" ? ok(["v=spf1 -all"]) : fails(
      name === "nx.test" ? "NXDOMAIN" : name === "nd.test" ? "NODATA" : name === "to.test" ? "TIMEOUT" : "SERVFAIL",
    )),
    a: async () => ok(["192.0.2.1"]),
    aaaa: async () => fails("NODATA"),
    mx: async () => ok([{ preference: 10, exchange: "mx.t.test" }]),
    ptr: async () => ok(["host.t.test"]),
  });

  test("answers in node's dns.resolve shapes", async () => {
    assert.deepEqual(await resolve("t.test.", "TXT"), [["v=spf1 -all"]]);
    assert.deepEqual(await resolve("t.test", "A"), ["192.0.2.1"]);
    assert.deepEqual(await resolve("t.test", "MX"), [{ exchange: "mx.t.test", priority: 10 }]);
    assert.deepEqual(await resolve("1.2.0.192.in-addr.arpa", "PTR"), ["host.t.test"]);
  });

  test("errors carry node's codes; failures to get an answer say temperror to SPF", async () => {
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => "resolved",
        (e: { code: string; spfResult?: { error: string } }) => `${e.code} ${e.spfResult?.error ?? "-"}`,
      );
    assert.equal(await codeOf(resolve("nx.test", "TXT")), "ENOTFOUND -");
    assert.equal(await codeOf(resolve("nd.test", "TXT")), "ENODATA -");
    assert.equal(await codeOf(resolve("sf.test", "TXT")), "ESERVFAIL temperror");
    assert.equal(await codeOf(resolve("to.test", "TXT")), "ETIMEOUT temperror");
    assert.equal(await codeOf(resolve("t.test", "AAAA")), "ENODATA -");
    assert.equal(await codeOf(resolve("t.test", "SRV")), "ENOTIMP -");
  });
});
