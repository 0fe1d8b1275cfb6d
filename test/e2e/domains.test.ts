// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { runRelay } from "../helpers/relay-process.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

describe("sending domains: CLI and HTTP API", () => {
  let world: World;
  let env: Record<string, string>;
  before(async () => {
    world = await startWorld({ env: { RELAY_SOURCE_IP: "127.0.0.1", RELAY_BOUNCE_DOMAIN: "bounces.sender.test" } });
    env = {
      RELAY_DNS_SERVERS: `127.0.0.1:${world.dns.port}`,
      RELAY_SOURCE_IP: "127.0.0.1",
      RELAY_BOUNCE_DOMAIN: "bounces.sender.test",
    };
  });
  after(async () => {
    await world?.close();
  });
  const relay = (args: string[]) => runRelay(args, { dataDir: world.relay.dataDir, env });

  it("domains add prints every record; domains check fails, then passes once they are published", async () => {
    const added = await relay(["domains", "add", "sender.test", "--selector", "s1"]);
    assert.equal(added.code, 0, added.stderr);
    for (
      const expected of [
        'sender.test.  TXT  "v=spf1 ip4:127.0.0.1 ~all"',
        's1._domainkey.sender.test.  TXT  "v=DKIM1; k=rsa; p=',
        '_dmarc.sender.test.  TXT  "v=DMARC1; p=none; rua=mailto:dmarc@sender.test"',
        "bounces.sender.test.  MX  10 relay.test",
        '_smtp._tls.sender.test.  TXT  "v=TLSRPTv1; rua=mailto:tlsrpt@sender.test"',
        "[optional] MTA-STS",
        "include every relay node's IP".replace("include", "Include"),
      ]
    ) {
      assert.ok(added.stdout.includes(expected), `missing ${expected} in:\n${added.stdout}`);
    }
    assert.doesNotMatch(added.stdout + added.stderr, /PRIVATE KEY/);

    const failing = await relay(["domains", "check", "sender.test"]);
    assert.equal(failing.code, 1, failing.stdout + failing.stderr);
    assert.match(failing.stdout, /^FAIL SPF sender\.test: no SPF record at sender\.test$/m);
    assert.match(failing.stdout, /^FAIL DKIM s1 \(rsa, active\) s1\._domainkey\.sender\.test: no DKIM record/m);
    assert.match(failing.stdout, /fix: publish s1\._domainkey\.sender\.test\. TXT "v=DKIM1; k=rsa; p=/);
    assert.match(failing.stdout, /DKIM fails \(treated as unsigned\)/);

    const json = JSON.parse((await relay(["domains", "show", "sender.test", "--json"])).stdout);
    const zone: Record<string, any> = { ...defaultZone(), "relay.test": { A: ["127.0.0.1"] } };
    for (const r of json.records) {
      if (!r.required) continue;
      const entry = (zone[r.name] ??= {});
      if (r.type === "TXT") entry.TXT = [...(entry.TXT ?? []), r.value];
      if (r.type === "MX") entry.MX = [{ preference: 10, exchange: r.value.split(" ")[1] }];
    }
    world.dns.setZone(zone);
    // At info, to see the CLI log as serve does (the services are built one way for both).
    const passing = await runRelay(["domains", "check", "sender.test"], {
      dataDir: world.relay.dataDir,
      env: { ...env, RELAY_LOG_LEVEL: "info" },
    });
    assert.equal(passing.code, 0, passing.stdout + passing.stderr);
    assert.match(
      passing.stderr,
      /"message":"a sending domain's DNS record changed","domain":"sender\.test","record":"dkim"/,
    );
    assert.match(passing.stdout, /^PASS SPF sender\.test: SPF passes for 127\.0\.0\.1$/m);
    assert.match(passing.stdout, /^PASS DKIM s1 \(rsa, active\)/m);
    assert.match(passing.stdout, /^PASS DMARC _dmarc\.sender\.test: policy p=none/m);
    assert.match(passing.stdout, /^PASS RETURN-PATH-MX bounces\.sender\.test/m);
    assert.match(passing.stdout, /^WARN TLS-RPT _smtp\._tls\.sender\.test \(optional\)/m);
    assert.match(passing.stdout, /concludes SPF pass/);
    assert.match(passing.stdout, /DMARC: pass \(DKIM aligned and SPF aligned\)/);

    const view = await world.api("GET", "/v1/domains/sender.test");
    assert.equal(view.status, 200);
    assert.equal(view.json.last_check.ok, true, "the CLI's check is what the API shows");
  });

  it("dkim keygen adds a key and prints its TXT record; bad usage exits 2", async () => {
    const made = await relay([
      "dkim",
      "keygen",
      "--domain",
      "other.test",
      "--algorithm",
      "ed25519",
      "--selector",
      "ed1",
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /ed1\._domainkey\.other\.test\. {2}TXT {2}"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="/);
    assert.equal((await relay(["dkim", "keygen"])).code, 2);
    assert.equal((await relay(["dkim", "keygen", "--domain", "x.test", "--algorithm", "dsa"])).code, 2);
    assert.equal((await relay(["dkim", "keygen", "--domain", "x.test", "--selector", "no good"])).code, 2);
    assert.equal((await relay(["domains", "add"])).code, 2);
    assert.equal((await relay(["domains", "frobnicate"])).code, 2);
    assert.equal((await relay(["domains", "add", "x.test", "--algorithm", "dsa"])).code, 2);
    const again = await relay(["domains", "add", "sender.test"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already added/);
    const listed = await relay(["domains", "list"]);
    assert.match(listed.stdout, /^other\.test\s+ed1\/ed25519\/active\s+not verified\s+never checked$/m);
  });

  it("HTTP: list, add, get; admin scope only; no private key in any answer", async () => {
    const added = await world.api("POST", "/v1/domains", { domain: "api.test", algorithm: "both", selector: "k1" });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    assert.deepEqual(added.json.keys.map((k: any) => [k.selector, k.algorithm, k.state]), [["k1", "rsa", "active"], [
      "k1-ed25519",
      "ed25519",
      "active",
    ]]);
    assert.equal((await world.api("POST", "/v1/domains", { domain: "api.test" })).status, 409);
    const invalid = await world.api("POST", "/v1/domains", { domain: "not a domain", algorithm: "dsa" });
    assert.equal(invalid.status, 422);
    assert.equal((await world.api("GET", "/v1/domains/nope.test")).status, 404);
    assert.equal((await world.api("POST", "/v1/domains/nope.test/dkim/rotate")).status, 404);
    const list = await world.api("GET", "/v1/domains");
    assert.deepEqual(list.json.domains.map((d: any) => d.domain), ["api.test", "other.test", "sender.test"]);
    const one = await world.api("GET", "/v1/domains/api.test");
    assert.ok(
      one.json.records.some((r: any) =>
        r.name === "k1-ed25519._domainkey.api.test" && /^v=DKIM1; k=ed25519; p=/.test(r.value)
      ),
    );
    for (const body of [added.json, list.json, one.json]) {
      assert.doesNotMatch(JSON.stringify(body), /PRIVATE KEY|private/i);
    }

    const key = await runRelay(["keys", "create", "--scope", "send", "--json"], { dataDir: world.relay.dataDir });
    const token = JSON.parse(key.stdout).token;
    const forbidden = await fetch(world.relay.url("/v1/domains"), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(forbidden.status, 403);

    const doc = (await (await fetch(world.relay.url("/openapi.json"))).json()) as { paths: Record<string, unknown> };
    for (
      const path of [
        "/v1/domains",
        "/v1/domains/{domain}",
        "/v1/domains/{domain}/dkim/rotate",
        "/v1/domains/{domain}/check",
      ]
    ) {
      assert.ok(doc.paths[path], `${path} is described`);
    }
  });
});
