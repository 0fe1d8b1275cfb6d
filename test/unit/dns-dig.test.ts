/** The fixture (and so the codec behind it) checked against an independent implementation: ISC dig. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";
import { NOT_INSTALLED, peerMissing } from "../helpers/peers.ts";

const run = promisify(execFile);
const digMissing = peerMissing("dig", "dnsutils", await run("dig", ["-v"]).then(() => undefined, () => NOT_INSTALLED));

let server: DnsServer;
const dig = async (...args: string[]): Promise<string> =>
  (await run("dig", ["@127.0.0.1", "-p", String(server.port), "+time=2", "+tries=1", ...args])).stdout;

describe("fixture DNS server seen by dig", { skip: digMissing }, () => {
  before(async () => {
    server = await startDnsServer({
      "example.test": {
        MX: [{ preference: 10, exchange: "mx.example.test" }, { preference: 20, exchange: "mx2.example.test" }],
        TXT: ["v=spf1 -all", ["part one ", "part two"], "x".repeat(1500)],
      },
      "mx.example.test": { A: ["127.0.0.1"], AAAA: ["::1", "2001:db8::25"] },
      "www.example.test": { CNAME: "mx.example.test" },
    });
  });
  after(() => server.close());

  test("MX, A, AAAA with +short", async () => {
    assert.deepEqual((await dig("example.test", "MX", "+short")).trim().split("\n").sort(), [
      "10 mx.example.test.",
      "20 mx2.example.test.",
    ]);
    assert.equal((await dig("mx.example.test", "A", "+short")).trim(), "127.0.0.1");
    assert.deepEqual((await dig("mx.example.test", "AAAA", "+short")).trim().split("\n").sort(), [
      "2001:db8::25",
      "::1",
    ]);
  });

  test("CNAME chain and multi-string TXT", async () => {
    assert.deepEqual((await dig("www.example.test", "A", "+short")).trim().split("\n"), [
      "mx.example.test.",
      "127.0.0.1",
    ]);
    const txt = await dig("example.test", "TXT", "+short");
    assert.match(txt, /^"v=spf1 -all"$/m);
    assert.match(txt, /^"part one " "part two"$/m);
  });

  test("a TXT answer over the EDNS size is truncated on UDP and complete over TCP", async () => {
    assert.match(await dig("example.test", "TXT", "+ignore"), /flags: qr aa tc rd ra;.*ANSWER: 0/);
    const tcpBefore = server.queries.filter((q) => q.transport === "tcp").length;
    const full = await dig("example.test", "TXT", "+short");
    assert.ok(full.includes(`"${"x".repeat(255)}" "${"x".repeat(255)}"`));
    assert.equal(server.queries.filter((q) => q.transport === "tcp").length, tcpBefore + 1);
  });

  test("NXDOMAIN and NODATA carry an SOA", async () => {
    const nx = await dig("nope.example.test", "A");
    assert.match(nx, /status: NXDOMAIN/);
    assert.match(nx, /AUTHORITY: 1/);
    const nodata = await dig("example.test", "AAAA");
    assert.match(nodata, /status: NOERROR.*\n.*ANSWER: 0, AUTHORITY: 1/);
  });

  test("dig over TCP (+tcp) gets the same answer", async () => {
    assert.equal((await dig("mx.example.test", "A", "+short", "+tcp")).trim(), "127.0.0.1");
  });
});
