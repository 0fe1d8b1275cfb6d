import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mayRelay, type AccessPolicy } from "../../src/ingress/access.ts";
import { parseCidr, type Cidr } from "../../src/core/cidr.ts";

const cidrs = (...texts: string[]): Cidr[] => texts.map((t) => parseCidr(t)!);
const policy: AccessPolicy = { relayNetworks: cidrs("127.0.0.0/8", "::1/128", "10.1.0.0/16"), bounceDomain: "bounces.relay.example" };

describe("mayRelay (SPEC.md, SMTP: Relaying)", () => {
  it("clients inside RELAY_RELAY_NETWORKS may send anywhere", () => {
    assert.ok(mayRelay(policy, { ip: "127.0.0.1" }, "gmail.com"));
    assert.ok(mayRelay(policy, { ip: "::1" }, "gmail.com"));
    assert.ok(mayRelay(policy, { ip: "::ffff:127.0.0.1" }, "gmail.com"), "v4-mapped loopback from a dual-stack socket");
    assert.ok(mayRelay(policy, { ip: "10.1.200.3" }, "example.org"));
  });

  it("authenticated clients may send anywhere, from any address", () => {
    assert.ok(mayRelay(policy, { ip: "203.0.113.9", authUser: "alice" }, "gmail.com"));
    assert.ok(mayRelay(policy, { ip: "2001:db8::9", authUser: "" }, "gmail.com"), "an empty user name is still authenticated");
  });

  it("anyone else may send only to the bounce domain", () => {
    const outsider = { ip: "203.0.113.9" };
    assert.ok(!mayRelay(policy, outsider, "gmail.com"));
    assert.ok(!mayRelay(policy, { ip: "10.2.0.1" }, "gmail.com"));
    assert.ok(!mayRelay(policy, { ip: "::2" }, "gmail.com"));
    assert.ok(mayRelay(policy, outsider, "bounces.relay.example"));
    assert.ok(!mayRelay(policy, outsider, "sub.bounces.relay.example"));
    assert.ok(!mayRelay(policy, outsider, "relay.example"));
  });

  it("without a bounce domain an outsider may send nowhere", () => {
    const closed: AccessPolicy = { relayNetworks: cidrs("127.0.0.0/8") };
    assert.ok(!mayRelay(closed, { ip: "203.0.113.9" }, "bounces.relay.example"));
    assert.ok(!mayRelay(closed, { ip: "203.0.113.9" }, ""));
  });

  it("an unparseable client address is outside every network", () => {
    assert.ok(!mayRelay({ relayNetworks: cidrs("0.0.0.0/0", "::/0") }, { ip: "unknown" }, "gmail.com"));
  });

  it("no relay networks: only authentication opens relaying", () => {
    const none: AccessPolicy = { relayNetworks: [] };
    assert.ok(!mayRelay(none, { ip: "127.0.0.1" }, "gmail.com"));
    assert.ok(mayRelay(none, { ip: "127.0.0.1", authUser: "bob" }, "gmail.com"));
  });
});
