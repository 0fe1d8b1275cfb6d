/**
 * The content scanner's policy against a scripted milter on loopback: whose
 * mail is scanned, connections kept per client and reused, a kept
 * connection the milter dropped replaced rather than counted as a failure,
 * and a scanner's default when it cannot be reached.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ContentScanner, type ScanInput } from "../../src/ingress/content-scan.ts";
import type { MilterSetting } from "../../src/core/milter-setting.ts";
import { parseMilterEndpoint } from "../../src/core/milter-endpoint.ts";
import { systemClock } from "../../src/core/clock.ts";
import { type MilterPeer, startMilterPeer } from "../fixtures/milter-peer.ts";
import { freePort } from "../helpers/relay-process.ts";

const setting = (address: string, overrides: Partial<MilterSetting> = {}): MilterSetting => ({
  endpoint: parseMilterEndpoint(address),
  name: address,
  default: "tempfail",
  connectTimeoutMs: 2_000,
  commandTimeoutMs: 2_000,
  messageTimeoutMs: 5_000,
  ...overrides,
});

const input = (overrides: Partial<ScanInput> = {}): ScanInput => ({
  id: "01TEST",
  submitter: "smtp-user",
  source: "smtp",
  clientIp: "192.0.2.7",
  clientHelo: "client.example",
  authUser: "alice",
  mailFrom: "alice@example.com",
  recipients: ["bob@example.org"],
  content: new TextEncoder().encode("Subject: hi\r\n\r\nhello\r\n"),
  ...overrides,
});

const logged: unknown[] = [];
const scannerFor = (milters: MilterSetting[], scope: ScanScopeList = ["users", "keys", "networks"]) =>
  new ContentScanner({
    milters,
    scope,
    hostname: "relay.test",
    maxMessageBytes: 1 << 20,
    clock: systemClock,
    log: (...entry) => void logged.push(entry),
  });
type ScanScopeList = ConstructorParameters<typeof ContentScanner>[0]["scope"];

describe("content scanner", () => {
  let peer: MilterPeer;
  /** Connections the peer drops when they start their second message. */
  const dropOnSecondMessage = new Set<number>();
  before(async () => {
    peer = await startMilterPeer({
      script: (command, seen) => {
        if (command.letter !== "M" || !dropOnSecondMessage.has(command.connection)) return undefined;
        const messages = seen.filter((c) => c.connection === command.connection && c.letter === "M").length;
        return messages === 2 ? "close" : undefined;
      },
    });
  });
  after(async () => {
    await peer?.close();
  });

  it("scans what the scope names, and a per-user or per-key choice wins over it", () => {
    const scanner = scannerFor([setting(peer.address)], ["users"]);
    assert.equal(scanner.applies({ submitter: "smtp-user", source: "smtp" }), true);
    assert.equal(scanner.applies({ submitter: "api-key", source: "http" }), false);
    assert.equal(scanner.applies({ submitter: "admin", source: "http" }), false);
    assert.equal(scanner.applies({ submitter: "relay-network", source: "smtp" }), false);
    assert.equal(scanner.applies({ submitter: "api-key", source: "http", scan: true }), true);
    assert.equal(scanner.applies({ submitter: "smtp-user", source: "smtp", scan: false }), false);
    // The relay's own reports are never scanned; nothing is without milters.
    assert.equal(scanner.applies({ submitter: "relay", source: "report", scan: true }), false);
    assert.equal(scannerFor([]).applies({ submitter: "smtp-user", source: "smtp" }), false);
  });

  it("sends CONNECT and HELO once per connection and keeps it for the same client's next message", async () => {
    const scanner = scannerFor([setting(peer.address)]);
    const from = peer.seen.length;
    for (let i = 0; i < 3; i++) assert.equal((await scanner.scan(input())).kind, "pass");
    assert.equal((await scanner.scan(input({ clientIp: "192.0.2.8" }))).kind, "pass");
    const seen = peer.seen.slice(from);
    const connections = [...new Set(seen.map((c) => c.connection))];
    assert.equal(connections.length, 2, "one connection per client");
    const first = seen.filter((c) => c.connection === connections[0]);
    assert.equal(first.filter((c) => c.letter === "C").length, 1);
    assert.equal(first.filter((c) => c.letter === "H").length, 1);
    assert.equal(first.filter((c) => c.letter === "M").length, 3);
    const connect = first.find((c) => c.letter === "C")!;
    assert.equal(connect.strings[0], "[192.0.2.7]");
    await scanner.close();
  });

  it("replaces a kept connection the milter dropped, instead of applying the default", async () => {
    const scanner = scannerFor([setting(peer.address)]);
    const first = await scanner.scan(input({ clientIp: "192.0.2.9" }));
    assert.equal(first.kind, "pass");
    const connection = peer.seen.at(-1)!.connection;
    dropOnSecondMessage.add(connection);
    const second = await scanner.scan(input({ clientIp: "192.0.2.9" }));
    assert.equal(second.kind, "pass", JSON.stringify(second));
    assert.equal(second.report[0]!.verdict, "accept");
    assert.ok(peer.seen.at(-1)!.connection > connection, "the message went over a new connection");
    await scanner.close();
  });

  it("applies the default of a milter nobody listens for, and says why", async () => {
    const down = `inet:127.0.0.1:${await freePort()}`;
    for (const [fallback, expected] of [["accept", "pass"], ["tempfail", "refuse"], ["reject", "refuse"]] as const) {
      const scanner = scannerFor([setting(down, { default: fallback })]);
      const result = await scanner.scan(input());
      assert.equal(result.kind, expected);
      assert.equal(result.report[0]!.verdict, "default");
      assert.match(result.report[0]!.failure!, /cannot connect to milter/);
      if (result.kind === "refuse") {
        assert.equal(result.reply.code, fallback === "reject" ? 550 : 451);
        assert.equal(result.reply.enhanced, fallback === "reject" ? "5.7.1" : "4.7.1");
      }
      await scanner.close();
    }
  });
});
