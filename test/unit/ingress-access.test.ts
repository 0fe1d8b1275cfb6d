import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { parseRoutes } from "../../src/core/route.ts";
import { type LiteralPolicy, literalRefusal, mayRelay, type RelayPolicy } from "../../src/ingress/access.ts";
import { type Cidr, parseCidr } from "../../src/core/cidr.ts";
import { ownAddresses } from "../../src/ingress/own-addresses.ts";

const cidrs = (...texts: string[]): Cidr[] => texts.map((t) => parseCidr(t)!);
const policy: RelayPolicy = {
  relayNetworks: cidrs("127.0.0.0/8", "::1/128", "10.1.0.0/16"),
  bounceDomain: "bounces.relay.example",
};

describe("mayRelay (SPEC.md, SMTP: Relaying)", () => {
  it("clients inside RELAY_RELAY_NETWORKS may send anywhere", () => {
    assert.ok(mayRelay(policy, { ip: "127.0.0.1" }, "gmail.com"));
    assert.ok(mayRelay(policy, { ip: "::1" }, "gmail.com"));
    assert.ok(mayRelay(policy, { ip: "::ffff:127.0.0.1" }, "gmail.com"), "v4-mapped loopback from a dual-stack socket");
    assert.ok(mayRelay(policy, { ip: "10.1.200.3" }, "example.org"));
  });

  it("authenticated clients may send anywhere, from any address", () => {
    assert.ok(mayRelay(policy, { ip: "203.0.113.9", authUser: "alice" }, "gmail.com"));
    assert.ok(
      mayRelay(policy, { ip: "2001:db8::9", authUser: "" }, "gmail.com"),
      "an empty user name is still authenticated",
    );
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
    const closed: RelayPolicy = { relayNetworks: cidrs("127.0.0.0/8") };
    assert.ok(!mayRelay(closed, { ip: "203.0.113.9" }, "bounces.relay.example"));
    assert.ok(!mayRelay(closed, { ip: "203.0.113.9" }, ""));
  });

  it("an unparseable client address is outside every network", () => {
    assert.ok(!mayRelay({ relayNetworks: cidrs("0.0.0.0/0", "::/0") }, { ip: "unknown" }, "gmail.com"));
  });

  it("no relay networks: only authentication opens relaying", () => {
    const none: RelayPolicy = { relayNetworks: [] };
    assert.ok(!mayRelay(none, { ip: "127.0.0.1" }, "gmail.com"));
    assert.ok(mayRelay(none, { ip: "127.0.0.1", authUser: "bob" }, "gmail.com"));
  });
});

describe("literalRefusal: address literals of this node or its networks", () => {
  const literals = (routes = "", own: string[] = []): LiteralPolicy => ({
    routes: parseRoutes(routes)!,
    ownAddresses: () => own,
  });
  const refused = (domain: string, policy = literals()) => literalRefusal(policy, domain)?.kind;

  it("refuses loopback, unspecified, private, shared, link-local and unique-local literals (5.7.1)", () => {
    for (
      const domain of [
        "[127.0.0.1]",
        "[127.255.255.254]",
        "[127.000.000.001]",
        "[0.0.0.0]",
        "[0.1.2.3]",
        "[10.0.0.1]",
        "[172.16.0.1]",
        "[172.31.255.255]",
        "[192.168.0.1]",
        "[100.64.0.1]",
        "[100.127.255.255]",
        "[169.254.169.254]",
        "[ipv6:::1]",
        "[ipv6:::]",
        "[ipv6:0:0:0:0:0:0:0:1]",
        "[ipv6:fe80::1]",
        "[ipv6:febf::1]",
        "[ipv6:fc00::1]",
        "[ipv6:fd12:3456::1]",
        "[ipv6:fec0::1]",
        "[ipv6:::ffff:127.0.0.1]",
        "[ipv6:::ffff:7f00:1]",
        "[ipv6:::ffff:10.0.0.1]",
        "[ipv6:::ffff:169.254.169.254]",
      ]
    ) {
      assert.equal(refused(domain), "internal", domain);
    }
  });

  it("refuses multicast, broadcast, reserved and IPv4-compatible literals as undeliverable", () => {
    for (
      const domain of [
        "[224.0.0.1]",
        "[239.255.255.250]",
        "[240.0.0.1]",
        "[255.255.255.255]",
        "[ipv6:ff02::1]",
        "[ipv6:::8.8.8.8]",
        "[ipv6:::ffff:224.0.0.1]",
      ]
    ) {
      assert.equal(refused(domain), "undeliverable", domain);
    }
  });

  it("refuses this node's own addresses, in any spelling", () => {
    const policy = literals("", ["203.0.113.5", "2001:db8::5"]);
    assert.equal(refused("[203.0.113.5]", policy), "internal");
    assert.equal(refused("[203.000.113.005]", policy), "internal");
    assert.equal(refused("[ipv6:::ffff:203.0.113.5]", policy), "internal");
    assert.equal(refused("[ipv6:2001:DB8:0::5]", policy), "internal");
    assert.match(
      literalRefusal(policy, "[203.0.113.5]")!.text,
      /^\[203\.0\.113\.5\] is an address of this node: .*RELAY_ROUTES/,
    );
    assert.equal(refused("[203.0.113.6]", policy), undefined);
  });

  it("asks for the node's addresses at each check: interfaces come and go", () => {
    const own: string[] = [];
    const policy: LiteralPolicy = { routes: [], ownAddresses: () => own };
    assert.equal(refused("[198.51.100.1]", policy), undefined);
    own.push("198.51.100.1");
    assert.equal(refused("[198.51.100.1]", policy), "internal");
  });

  it("allows public literals and domain names", () => {
    for (
      const domain of [
        "[198.51.100.7]",
        "[8.8.8.8]",
        "[172.32.0.1]",
        "[100.128.0.1]",
        "[ipv6:2001:db8::1]",
        "[ipv6:::ffff:8.8.8.8]",
        "example.com",
        "localhost",
      ]
    ) {
      assert.equal(refused(domain, literals("", ["203.0.113.5"])), undefined, domain);
    }
  });

  it("allows a literal RELAY_ROUTES names, in any spelling; * does not name it", () => {
    const policy = literals(
      "[127.0.0.1]=127.0.0.1:2526;[IPv6:::1]=[::1]:2526;[203.0.113.5]=10.0.0.1:25;*=smarthost.example:587",
      ["203.0.113.5"],
    );
    for (const domain of ["[127.0.0.1]", "[127.0.000.1]", "[ipv6:::ffff:127.0.0.1]", "[ipv6:0::1]", "[203.0.113.5]"]) {
      assert.equal(refused(domain, policy), undefined, domain);
    }
    assert.equal(refused("[127.0.0.2]", policy), "internal");
    assert.equal(refused("[10.0.0.1]", literals("*=smarthost.example:587")), "internal");
  });
});

describe("ownAddresses", () => {
  it("lists the configured addresses and those on the interfaces now; names are skipped", () => {
    const list = ownAddresses(["203.0.113.5", "relay.example", "2001:db8::5"])();
    for (const address of ["203.0.113.5", "2001:db8::5", "127.0.0.1"]) assert.ok(list.includes(address), address);
    assert.ok(!list.includes("relay.example"));
    for (const i of Object.values(networkInterfaces()).flat()) assert.ok(list.includes(i!.address), i!.address);
  });
});
