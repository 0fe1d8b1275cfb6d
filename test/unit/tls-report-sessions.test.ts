import assert from "node:assert/strict";
import { rootCertificates } from "node:tls";
import { after, before, describe, test } from "node:test";
import { reply } from "../../src/core/reply.ts";
import { stsTlsFor } from "../../src/delivery/planner.ts";
import type { TargetHost } from "../../src/delivery/route.ts";
import { SmtpTransport, type SmtpTransportDeps, type TlsRequirement } from "../../src/delivery/smtp-transport.ts";
import { TlsFallbackMemory } from "../../src/delivery/tls-memory.ts";
import { resultTypeOfCertificate, resultTypeOfTlsError } from "../../src/delivery/tls-report/result-type.ts";
import type { TlsSession } from "../../src/delivery/tls-report/session.ts";
import { type Channel, DestinationUnreachable } from "../../src/delivery/work.ts";
import { SmtpClientError } from "../../src/smtp/client/index.ts";
import { type Destination, type DestinationOptions, startDestination } from "../fixtures/smtp-destination.ts";
import { makePki, type TestPki } from "../helpers/pki.ts";

/**
 * RFC 8460 4.3: what an attempt to open a destination shows about TLS, as
 * the transport reports it for TLS reporting, against real TLS servers.
 */

describe("result types (RFC 8460 4.3) from TLS errors", () => {
  test("certificate codes: host mismatch, expired, not trusted, anything else a validation failure", () => {
    assert.equal(resultTypeOfCertificate("ERR_TLS_CERT_ALTNAME_INVALID"), "certificate-host-mismatch");
    assert.equal(resultTypeOfCertificate("CERT_HAS_EXPIRED"), "certificate-expired");
    for (
      const code of [
        "DEPTH_ZERO_SELF_SIGNED_CERT",
        "SELF_SIGNED_CERT_IN_CHAIN",
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
        "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      ]
    ) {
      assert.equal(resultTypeOfCertificate(code), "certificate-not-trusted", code);
    }
    for (const code of ["CERT_NOT_YET_VALID", "CERT_SIGNATURE_FAILURE", "ERR_SSL_WRONG_VERSION_NUMBER", undefined]) {
      assert.equal(resultTypeOfCertificate(code), "validation-failure", String(code));
    }
  });

  test("SMTP client errors: STARTTLS not offered or refused; a handshake failure by its code; a broken STARTTLS", () => {
    const notOffered = new SmtpClientError("tls", "starttls", "TLS required but 127.0.0.1 does not offer STARTTLS");
    assert.equal(resultTypeOfTlsError(notOffered), "starttls-not-supported");
    const refused = new SmtpClientError(
      "tls",
      "starttls",
      "starttls refused: 454 4.7.0 not now",
      reply(454, "4.7.0", "not now"),
    );
    assert.equal(resultTypeOfTlsError(refused), "starttls-not-supported");
    const handshake = new SmtpClientError("tls", "tls", "TLS handshake failed: expired", undefined, "CERT_HAS_EXPIRED");
    assert.equal(resultTypeOfTlsError(handshake), "certificate-expired");
    const broken = new SmtpClientError("tls", "starttls", "STARTTLS failed: connection closed", undefined, undefined, {
      cause: new Error("closed"),
    });
    assert.equal(resultTypeOfTlsError(broken), "validation-failure");
  });
});

let pki: TestPki;
const started: Destination[] = [];
before(() => {
  pki = makePki();
});
after(async () => {
  await Promise.all(started.map((d) => d.close()));
  pki?.cleanup();
});

async function destination(options: DestinationOptions): Promise<Destination> {
  const d = await startDestination(options);
  started.push(d);
  return d;
}

const host = (name: string, d: Destination): TargetHost => ({ name, addresses: [d.host], port: d.port });

function transport(
  hosts: TargetHost[],
  tlsFor: (host: TargetHost) => TlsRequirement,
  deps: Partial<SmtpTransportDeps> = {},
): SmtpTransport {
  return new SmtpTransport(hosts, {
    heloName: "relay.test",
    tlsMemory: new TlsFallbackMemory({ now: () => Date.now() }),
    maxRecipients: () => 100,
    tlsCa: [...rootCertificates, pki.ca],
    timeouts: { connect: 5000, greeting: 5000, ehlo: 5000, starttls: 5000, quit: 1000 },
    tlsFor,
    ...deps,
  });
}

async function opened(t: SmtpTransport): Promise<readonly TlsSession[]> {
  const channel: Channel = await t.open();
  await channel.quit();
  return channel.tlsSessions ?? [];
}

async function unreachable(t: SmtpTransport): Promise<readonly TlsSession[]> {
  const error = await t.open().then(
    (c) => {
      c.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  assert.ok(error instanceof DestinationUnreachable, `expected DestinationUnreachable, got ${String(error)}`);
  return error.tlsSessions;
}

const outcomes = (sessions: readonly TlsSession[]) =>
  sessions.map((s) => [s.mxHost, s.failure?.resultType ?? "success"]);

describe("TLS sessions of an MTA-STS enforce destination (verified TLS required)", () => {
  test("an MX whose certificate is for another name, then one that verifies: a host mismatch and a success, with the addresses", async () => {
    const d = await destination({ starttls: pki.leaf(["mx.good.test"]) });
    const sessions = await opened(
      transport([host("mx.bad.test", d), host("mx.good.test", d)], (h) => ({ mode: "required", servername: h.name })),
    );
    assert.deepEqual(outcomes(sessions), [["mx.bad.test", "certificate-host-mismatch"], ["mx.good.test", "success"]]);
    assert.equal(sessions[0]?.receivingIp, "127.0.0.1");
    assert.equal(sessions[0]?.failure?.reasonCode, "ERR_TLS_CERT_ALTNAME_INVALID");
    assert.equal(sessions[1]?.receivingIp, "127.0.0.1");
    assert.equal(sessions[1]?.sendingIp, "127.0.0.1", "the session's own source address");
  });

  test("self-signed, expired, no STARTTLS: not trusted, expired, starttls-not-supported; the destination unreachable", async () => {
    const selfSigned = await destination({ starttls: pki.leaf(["mx.a.test"], { selfSigned: true }) });
    const expired = await destination({ starttls: pki.leaf(["mx.b.test"], { expired: true }) });
    const plain = await destination({});
    const sessions = await unreachable(
      transport(
        [host("mx.a.test", selfSigned), host("mx.b.test", expired), host("mx.c.test", plain)],
        (h) => ({ mode: "required", servername: h.name }),
      ),
    );
    assert.deepEqual(outcomes(sessions), [
      ["mx.a.test", "certificate-not-trusted"],
      ["mx.b.test", "certificate-expired"],
      ["mx.c.test", "starttls-not-supported"],
    ]);
    assert.equal(plain.messages.length, 0);
  });

  test("an MX host the policy does not list: a validation failure, never connected to", async () => {
    const d = await destination({ starttls: pki.leaf(["mx.good.test"]) });
    const sessions = await unreachable(
      transport([host("mx.elsewhere.test", d)], () => ({ mode: "refuse", reason: "MTA-STS: not listed" })),
    );
    assert.deepEqual(sessions, [{
      mxHost: "mx.elsewhere.test",
      sendingIp: undefined,
      failure: { resultType: "validation-failure", reasonCode: "MTA-STS: not listed" },
    }]);
    assert.equal(d.connections, 0);
  });

  test("a refused connection is no TLS session (RFC 8460 4.3.4: transient failures need not be reported)", async () => {
    const d = await destination({ starttls: pki.leaf(["mx.good.test"]) });
    const port = d.port;
    await d.close();
    const sessions = await unreachable(
      transport(
        [{ name: "mx.good.test", addresses: ["127.0.0.1"], port }],
        (h) => ({ mode: "required", servername: h.name }),
      ),
    );
    assert.deepEqual(sessions, []);
  });
});

describe("TLS sessions without a policy, and under MTA-STS testing (checked, not enforced)", () => {
  test("no policy: STARTTLS (any certificate) is a success; none offered is starttls-not-supported, and the session opens all the same", async () => {
    const tlsHost = await destination({ starttls: pki.leaf(["other.test"], { selfSigned: true }) });
    assert.deepEqual(
      outcomes(await opened(transport([host("mx.tls.test", tlsHost)], () => ({ mode: "opportunistic" })))),
      [["mx.tls.test", "success"]],
    );
    const plain = await destination({});
    assert.deepEqual(
      outcomes(await opened(transport([host("mx.plain.test", plain)], () => ({ mode: "opportunistic" })))),
      [
        ["mx.plain.test", "starttls-not-supported"],
      ],
    );
  });

  test("a broken STARTTLS: plaintext after a failed handshake, and straight plaintext next time; both reported", async () => {
    const d = await destination({ brokenStarttls: true });
    const t = transport([host("mx.broken.test", d)], () => ({ mode: "opportunistic" }));
    const [first] = await opened(t);
    assert.equal(first?.failure?.resultType, "validation-failure");
    const [second] = await opened(t);
    assert.equal(second?.failure?.resultType, "validation-failure");
    assert.match(second?.failure?.reasonCode ?? "", /skipped after a recent failed handshake/);
  });

  test("testing: a certificate for another name and an unlisted MX are reported as enforce would see them; the sessions open all the same", async () => {
    const log = () => undefined;
    const sts = {
      mode: "testing" as const,
      id: "1",
      policy: {
        version: "STSv1" as const,
        mode: "testing" as const,
        mx: ["mx.listed.test", "mx.good.test"],
        maxAge: 86400,
      },
    };
    const wrongName = await destination({ starttls: pki.leaf(["mx.good.test"]) });
    assert.deepEqual(
      outcomes(await opened(transport([host("mx.listed.test", wrongName)], stsTlsFor("soft.test", sts, log)))),
      [
        ["mx.listed.test", "certificate-host-mismatch"],
      ],
    );
    assert.deepEqual(
      outcomes(await opened(transport([host("mx.good.test", wrongName)], stsTlsFor("soft.test", sts, log)))),
      [["mx.good.test", "success"]],
    );
    const [unlisted] = await opened(transport([host("mx.unlisted.test", wrongName)], stsTlsFor("soft.test", sts, log)));
    assert.equal(unlisted?.failure?.resultType, "validation-failure");
    assert.match(unlisted?.failure?.reasonCode ?? "", /mx\.unlisted\.test does not match the MTA-STS policy/);
    const selfSigned = await destination({ starttls: pki.leaf(["mx.good.test"], { selfSigned: true }) });
    assert.deepEqual(
      outcomes(await opened(transport([host("mx.good.test", selfSigned)], stsTlsFor("soft.test", sts, log)))),
      [
        ["mx.good.test", "certificate-not-trusted"],
      ],
    );
  });
});
