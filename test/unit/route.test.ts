import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chosenWithoutMx, createRouter } from "../../src/delivery/route.ts";
import type { Route } from "../../src/core/route.ts";
import type { MailHostsResult } from "../../src/dns/mx.ts";

function router(routes: Route[], answer: MailHostsResult, mxPort = 25) {
  const lookups: string[] = [];
  const route = createRouter({
    routes,
    mxPort,
    lookupMailHosts: async (domain) => {
      lookups.push(domain);
      return answer;
    },
  });
  return { route, lookups };
}

const MX: MailHostsResult = {
  kind: "hosts",
  hosts: [
    { name: "mx1.example.com", preference: 10, addresses: ["2001:db8::1", "192.0.2.1"], implicit: false },
    { name: "mx2.example.com", preference: 20, addresses: ["192.0.2.2"], implicit: false },
  ],
};

describe("createRouter static routes (RELAY_ROUTES)", () => {
  it("an exact route wins and skips the MX lookup", async () => {
    const { route, lookups } = router([{ domain: "example.com", target: { host: "relay.internal", port: 2525 } }], MX);
    assert.deepEqual(await route("example.com"), {
      kind: "hosts",
      hosts: [{ name: "relay.internal", addresses: ["relay.internal"], port: 2525 }],
    });
    assert.deepEqual(lookups, []);
  });

  it("the exact route wins over *, wherever * is listed", async () => {
    const routes: Route[] = [
      { domain: "*", target: { host: "smarthost.example", port: 587 } },
      { domain: "example.com", target: { host: "10.0.0.5", port: 2525 } },
    ];
    const { route } = router(routes, MX);
    assert.deepEqual(await route("example.com"), {
      kind: "hosts",
      hosts: [{ name: "10.0.0.5", addresses: ["10.0.0.5"], port: 2525 }],
    });
    assert.deepEqual(await route("other.test"), {
      kind: "hosts",
      hosts: [{ name: "smarthost.example", addresses: ["smarthost.example"], port: 587 }],
    });
  });

  it("* sends every other domain to the smarthost without DNS", async () => {
    const { route, lookups } = router([{ domain: "*", target: { host: "::1", port: 2526 } }], MX);
    assert.deepEqual(await route("anything.example"), {
      kind: "hosts",
      hosts: [{ name: "::1", addresses: ["::1"], port: 2526 }],
    });
    assert.deepEqual(lookups, []);
  });

  it("an exact route does not match subdomains or other domains: those go to MX", async () => {
    const { route, lookups } = router(
      [{ domain: "example.com", target: { host: "relay.internal", port: 2525 } }],
      MX,
      2500,
    );
    const r = await route("sub.example.com");
    assert.equal(r.kind, "hosts");
    assert.deepEqual(lookups, ["sub.example.com"]);
    assert.equal(r.kind === "hosts" && r.hosts[0]!.name, "mx1.example.com");
  });
});

describe("createRouter address literals (RFC 5321 4.1.3)", () => {
  it("a literal names its host: no MX lookup, RELAY_MX_PORT", async () => {
    const { route, lookups } = router([], MX, 2525);
    assert.deepEqual(await route("[198.51.100.7]"), {
      kind: "hosts",
      hosts: [{ name: "198.51.100.7", addresses: ["198.51.100.7"], port: 2525 }],
    });
    assert.deepEqual(await route("[ipv6:2001:DB8::0:7]"), {
      kind: "hosts",
      hosts: [{ name: "2001:db8::7", addresses: ["2001:db8::7"], port: 2525 }],
    });
    assert.deepEqual(await route("[ipv6:::ffff:198.51.100.7]"), {
      kind: "hosts",
      hosts: [{ name: "198.51.100.7", addresses: ["198.51.100.7"], port: 2525 }],
    });
    assert.deepEqual(lookups, []);
  });

  it("a route that names the literal, in any spelling, wins; so does a smarthost", async () => {
    const routes: Route[] = [{ domain: "[127.0.0.1]", target: { host: "127.0.0.1", port: 2526 } }];
    const named = router(routes, MX);
    assert.deepEqual(await named.route("[127.000.0.1]"), {
      kind: "hosts",
      hosts: [{ name: "127.0.0.1", addresses: ["127.0.0.1"], port: 2526 }],
    });
    const smarthost = router([{ domain: "*", target: { host: "smarthost.example", port: 587 } }], MX);
    assert.deepEqual(await smarthost.route("[198.51.100.7]"), {
      kind: "hosts",
      hosts: [{ name: "smarthost.example", addresses: ["smarthost.example"], port: 587 }],
    });
  });

  it("a literal's hosts, like a static route's, are chosen without MX: no MTA-STS for them", () => {
    const routes: Route[] = [{ domain: "routed.example", target: { host: "relay.internal", port: 25 } }];
    assert.ok(chosenWithoutMx([], "[198.51.100.7]"));
    assert.ok(chosenWithoutMx(routes, "Routed.Example"));
    assert.ok(!chosenWithoutMx(routes, "example.com"));
    assert.ok(chosenWithoutMx([{ domain: "*", target: routes[0]!.target }], "example.com"));
  });
});

describe("createRouter MX results", () => {
  it("hosts keep their order and addresses and get RELAY_MX_PORT", async () => {
    const { route, lookups } = router([], MX, 2525);
    assert.deepEqual(await route("example.com"), {
      kind: "hosts",
      hosts: [
        { name: "mx1.example.com", addresses: ["2001:db8::1", "192.0.2.1"], port: 2525 },
        { name: "mx2.example.com", addresses: ["192.0.2.2"], port: 2525 },
      ],
    });
    assert.deepEqual(lookups, ["example.com"]);
  });

  it("null MX is permanent 5.1.10", async () => {
    const r = await router([], { kind: "null-mx" }).route("nomail.example");
    assert.equal(r.kind, "permanent");
    assert.equal(r.kind === "permanent" && r.status, "5.1.10");
    assert.match(r.kind === "permanent" ? r.reason : "", /nomail\.example/);
  });

  it("NXDOMAIN is permanent 5.1.2", async () => {
    const r = await router([], { kind: "no-domain" }).route("gone.example");
    assert.deepEqual(r.kind === "permanent" && r.status, "5.1.2");
    assert.match(r.kind === "permanent" ? r.reason : "", /gone\.example/);
  });

  it("no host with an address is permanent 5.4.4 and carries the detail", async () => {
    const r = await router([], { kind: "no-hosts", detail: "mx.gone.example: NXDOMAIN" }).route("gone.example");
    assert.equal(r.kind === "permanent" && r.status, "5.4.4");
    assert.match(r.kind === "permanent" ? r.reason : "", /mx\.gone\.example: NXDOMAIN/);
  });

  it("a DNS failure is temporary (defer, never bounce) and carries the detail", async () => {
    const answer: MailHostsResult = { kind: "temporary", error: "SERVFAIL", detail: "MX example.com: SERVFAIL" };
    const r = await router([], answer).route("example.com");
    assert.equal(r.kind, "temporary");
    assert.ok(!("status" in r));
    assert.match(r.kind === "temporary" ? r.reason : "", /SERVFAIL/);
  });
});
