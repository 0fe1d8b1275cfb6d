import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createDnsClient } from "../../src/dns/client.ts";
import { createResolver, type Resolver } from "../../src/dns/resolver.ts";
import { createMtaSts } from "../../src/delivery/mta-sts/discover.ts";
import { tlsRequirement } from "../../src/delivery/mta-sts/enforce.ts";
import { type FetchOptions, fetchPolicy } from "../../src/delivery/mta-sts/fetch.ts";
import { createSecureContext, listenTcp, type TcpListener, upgradeToTlsServer } from "../../src/platform/net.ts";
import { INBOUND_TLS } from "../../src/tls/policy.ts";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";
import { makePki, type TestPki } from "../helpers/pki.ts";

const POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmx: *.mx.example.test\r\nmax_age: 86400\r\n";

/** What the test HTTPS server sends back: raw bytes after it has read the request head. */
type Responder = (request: string) => string | Uint8Array;

interface PolicyServer {
  readonly port: number;
  readonly requests: string[];
  respond: Responder;
  close(): Promise<void>;
}

/** An HTTPS server on 127.0.0.1 built on the platform's TLS server upgrade. */
async function startPolicyServer(identity: { cert: string; key: string }): Promise<PolicyServer> {
  const context = createSecureContext({ ...identity, ...INBOUND_TLS });
  const sockets = new Set<{ destroy(): void }>();
  const server: PolicyServer = {
    port: 0,
    requests: [],
    respond: () => ok(POLICY),
    close: async () => {
      for (const s of sockets) s.destroy();
      await listener.close();
    },
  };
  const listener: TcpListener = await listenTcp("127.0.0.1", 0, (raw) => {
    sockets.add(raw);
    raw.on("error", () => raw.destroy());
    raw.on("close", () => sockets.delete(raw));
    upgradeToTlsServer(raw, context, 5_000).then(
      (secure) => {
        sockets.add(secure);
        secure.on("close", () => sockets.delete(secure));
        secure.on("error", () => secure.destroy());
        let head = "";
        secure.on("data", (chunk: Uint8Array) => {
          head += Buffer.from(chunk).toString("latin1");
          if (!head.includes("\r\n\r\n")) return;
          server.requests.push(head);
          const reply = server.respond(head);
          head = "";
          secure.end(reply);
        });
      },
      () => raw.destroy(),
    );
  });
  (server as { port: number }).port = listener.port;
  return server;
}

function ok(body: string, contentType = "text/plain"): string {
  return `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\nContent-Length: ${
    Buffer.byteLength(body)
  }\r\nConnection: close\r\n\r\n${body}`;
}

let pki: TestPki;
let dns: DnsServer;
let resolver: Resolver;
let good: PolicyServer;
let wrongName: PolicyServer;

before(async () => {
  pki = makePki();
  good = await startPolicyServer(pki.leaf(["mta-sts.example.test"]));
  wrongName = await startPolicyServer(pki.leaf(["mta-sts.other.test"]));
  dns = await startDnsServer({
    "mta-sts.example.test": { A: ["127.0.0.1"] },
    "_mta-sts.example.test": { TXT: ["v=STSv1; id=20240101T000000;"] },
    "mta-sts.alias.test": { CNAME: "mta-sts.example.test" },
    "mta-sts.nohost.test": { TXT: ["unrelated"] },
  });
  resolver = createResolver(createDnsClient({ servers: [dns], attempts: 1 }));
});

after(async () => {
  await Promise.all([good?.close(), wrongName?.close(), dns?.close()]);
  pki?.cleanup();
});

const options = (extra: Partial<FetchOptions> = {}): FetchOptions => ({
  resolver,
  port: good.port,
  ca: pki.ca,
  timeoutMs: 10_000,
  ...extra,
});

async function failure(domain: string, extra: Partial<FetchOptions> = {}): Promise<string> {
  const result = await fetchPolicy(domain, options(extra));
  assert.ok(!result.ok, `expected a failure, got ${JSON.stringify(result)}`);
  return result.reason;
}

describe("policy fetch over HTTPS (RFC 8461 3.3)", () => {
  test("fetches and parses the policy; host resolved through our resolver; plain GET of the well-known path", async () => {
    good.respond = () => ok(POLICY, "text/plain; charset=utf-8");
    const result = await fetchPolicy("Example.Test.", options());
    assert.deepEqual(result, {
      ok: true,
      policy: { version: "STSv1", mode: "enforce", mx: ["mx1.example.test", "*.mx.example.test"], maxAge: 86400 },
    });
    const request = good.requests.at(-1) ?? "";
    assert.match(request, /^GET \/\.well-known\/mta-sts\.txt HTTP\/1\.1\r\n/);
    assert.match(request, new RegExp(`\r\nHost: mta-sts\\.example\\.test:${good.port}\r\n`));
    assert.ok(dns.queries.some((q) => q.name === "mta-sts.example.test" && q.type === "A"));
  });

  test("chunked transfer coding is decoded", async () => {
    good.respond = () =>
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
      `${(20).toString(16)}\r\n${POLICY.slice(0, 20)}\r\n${(POLICY.length - 20).toString(16)};ext=1\r\n${
        POLICY.slice(20)
      }\r\n0\r\n\r\n`;
    const result = await fetchPolicy("example.test", options());
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.policy.maxAge, 86400);
  });

  test("a body framed by the end of the connection is accepted", async () => {
    good.respond = () => `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${POLICY}`;
    assert.ok((await fetchPolicy("example.test", options())).ok);
  });

  test("a certificate for another name fails", async () => {
    const reason = await failure("example.test", { port: wrongName.port });
    assert.match(reason, /certificate not valid for mta-sts\.example\.test/);
    assert.equal(wrongName.requests.length, 0, "no request is sent over an unverified connection");
  });

  test("a certificate from an untrusted CA fails (no `ca`: system roots only)", async () => {
    const before = good.requests.length;
    const reason = await failure("example.test", { ca: undefined });
    assert.match(reason, /certificate not valid for mta-sts\.example\.test/);
    assert.equal(good.requests.length, before);
  });

  test("the name is checked against mta-sts.<domain>, not the CNAME target's owner", async () => {
    // mta-sts.alias.test is a CNAME to mta-sts.example.test: same address, but the certificate is not for mta-sts.alias.test.
    const reason = await failure("alias.test");
    assert.match(reason, /certificate not valid for mta-sts\.alias\.test/);
  });

  test("a redirect is not followed", async () => {
    good.respond = () =>
      "HTTP/1.1 301 Moved Permanently\r\nLocation: https://mta-sts.example.test/elsewhere\r\nContent-Length: 0\r\n\r\n";
    const before = good.requests.length;
    assert.match(
      await failure("example.test"),
      /301 redirect to "https:\/\/mta-sts\.example\.test\/elsewhere" not followed/,
    );
    assert.equal(good.requests.length, before + 1);
  });

  test("404 fails", async () => {
    good.respond = () => "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found";
    assert.match(await failure("example.test"), /status 404/);
  });

  test("a content type other than text/plain fails, as does none", async () => {
    good.respond = () => ok(POLICY, "text/html; charset=utf-8");
    assert.match(await failure("example.test"), /Content-Type "text\/html; charset=utf-8" is not text\/plain/);
    good.respond = () => `HTTP/1.1 200 OK\r\nContent-Length: ${POLICY.length}\r\n\r\n${POLICY}`;
    assert.match(await failure("example.test"), /Content-Type "" is not text\/plain/);
  });

  test("a body over the limit fails, by Content-Length, chunks or the connection's end", async () => {
    const big = POLICY + `# ${"x".repeat(70_000)}\r\n`;
    good.respond = () => ok(big);
    assert.match(await failure("example.test"), /exceeds 65536/);
    good.respond = () =>
      `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n${
        big.length.toString(16)
      }\r\n${big}\r\n0\r\n\r\n`;
    assert.match(await failure("example.test"), /exceeds 65536/);
    good.respond = () => `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n${big}`;
    assert.match(await failure("example.test"), /exceeds 65536/);
    good.respond = () => ok(POLICY);
    assert.match(await failure("example.test", { maxBodyBytes: 16 }), /exceeds 16/);
  });

  test("an invalid policy fails with the parser's reason", async () => {
    good.respond = () => ok("version: STSv1\r\nmode: enforce\r\nmax_age: 60\r\n");
    assert.match(await failure("example.test"), /invalid policy: mode enforce needs at least one mx/);
  });

  test("a malformed response fails", async () => {
    good.respond = () =>
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert.match(await failure("example.test"), /both Transfer-Encoding and Content-Length/);
    good.respond = () => "SMTP 220 hello\r\n\r\n";
    assert.match(await failure("example.test"), /bad status line/);
    good.respond = () =>
      `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${POLICY.length + 5}\r\n\r\n${POLICY}`;
    assert.match(await failure("example.test"), /connection closed after/);
  });

  test("no address, nothing listening and a server that never answers all fail as values", async () => {
    assert.match(await failure("nohost.test"), /mta-sts\.nohost\.test has no usable address \(A NODATA, AAAA NODATA\)/);
    assert.match(await failure("unknown.test"), /NXDOMAIN/);
    const closed = await listenTcp("127.0.0.1", 0, (s) => s.destroy());
    const port = closed.port;
    await closed.close();
    assert.ok(await failure("example.test", { port }));
    const accepted: { destroy(): void }[] = [];
    const silent = await listenTcp("127.0.0.1", 0, (s) => {
      accepted.push(s);
      s.on("error", () => s.destroy());
    });
    try {
      // The deadline covers connect, handshake and response: this server never completes the handshake.
      assert.match(await failure("example.test", { port: silent.port, timeoutMs: 200 }), /timed out after 200 ms/);
    } finally {
      for (const s of accepted) s.destroy();
      await silent.close();
    }
  });

  test("an invalid domain is refused before any lookup", async () => {
    assert.match(await failure("bad domain"), /not a domain name/);
  });
});

describe("discovery and enforcement against the HTTPS fixture", () => {
  test("TXT record, fetch, enforce decisions", async () => {
    good.respond = () => ok(POLICY);
    let now = 0;
    const sts = createMtaSts({ resolver, clock: { now: () => now }, port: good.port, ca: pki.ca, timeoutMs: 10_000 });
    const result = await sts.policyFor("example.test");
    assert.equal(result.mode, "enforce");
    assert.ok(result.mode === "enforce" && result.id === "20240101T000000");
    assert.deepEqual(tlsRequirement(result, "a.mx.example.test"), {
      tls: "required",
      verify: true,
      servername: "a.mx.example.test",
    });
    assert.ok("refuse" in tlsRequirement(result, "mx.attacker.test"));
    const fetches = good.requests.length;
    now += 1000;
    await sts.policyFor("example.test");
    assert.equal(good.requests.length, fetches, "same id, within max_age: cached");
    assert.deepEqual(await sts.policyFor("nohost.test"), { mode: "none" });
  });
});
