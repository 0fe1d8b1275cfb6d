import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatShapingError } from "../../src/shaping/load.ts";
import { effectiveRules, providerOf } from "../../src/shaping/resolve.ts";
import type { ShapingRules } from "../../src/shaping/rules.ts";
import { loadOperatorShaping, shippedShaping } from "../../src/shaping/shipped.ts";

function withOperatorFile(text: string): ShapingRules {
  const loaded = loadOperatorShaping(text, "shaping.yaml");
  assert.ok(loaded.ok, loaded.ok ? "" : loaded.errors.map(formatShapingError).join("\n"));
  return loaded.rules;
}

describe("providerOf: the provider of a destination, by the suffix of its MX host names", () => {
  const shipped = shippedShaping().rules;
  // MX host names as these providers publish them.
  const cases: [string, string][] = [
    ["gmail-smtp-in.l.google.com", "google"],
    ["alt2.gmail-smtp-in.l.google.com", "google"],
    ["aspmx.l.google.com", "google"],
    ["smtp.google.com", "google"],
    ["contoso-com.mail.protection.outlook.com", "microsoft"],
    ["hotmail-com.olc.protection.outlook.com", "microsoft"],
    ["contoso-com.o-v1.mx.microsoft", "microsoft"],
    ["mta5.am0.yahoodns.net", "yahoo"],
    ["mx-aol.mail.gm0.yahoodns.net", "yahoo"],
    ["mx01.mail.icloud.com", "apple"],
    ["mx00.emig.gmx.net", "gmx-webde"],
    ["mx-ha03.web.de", "gmx-webde"],
    ["smtp-in.orange.fr", "orange"],
    ["mxs.mail.ru", "mailru"],
    ["mx.yandex.net", "yandex"],
    ["mx1.comcast.net", "comcast"],
    ["mail.protonmail.ch", "proton"],
    ["mx.zoho.eu", "zoho"],
    ["in1-smtp.messagingengine.com", "fastmail"],
    ["mx00.t-online.de", "t-online"],
    ["smtp-in.libero.it", "italiaonline"],
    ["mx1.free.fr", "free"],
    ["smtp-in.sfr.fr", "sfr"],
    ["smtpz4.laposte.net", "laposte"],
    ["mx3.qq.com", "qq"],
    ["mx1.naver.com", "naver"],
    ["mx1.seznam.cz", "seznam"],
    ["mx.east.cox.net", "cox"],
    ["us-smtp-inbound-1.mimecast.com", "mimecast"],
  ];
  for (const [host, provider] of cases) {
    it(`${host} → ${provider}`, () => assert.equal(providerOf(shipped, [host]), provider));
  }

  it("ignores case and a trailing dot", () => {
    assert.equal(providerOf(shipped, ["GMAIL-SMTP-IN.L.Google.COM."]), "google");
  });

  it("matches whole labels only: a name that merely ends in the same letters is no one's", () => {
    assert.equal(providerOf(shipped, ["mx.notgoogle.com"]), undefined);
    assert.equal(providerOf(shipped, ["google.com.example.net"]), undefined);
    assert.equal(providerOf(shipped, ["mx.example.net"]), undefined);
    assert.equal(providerOf(shipped, []), undefined);
  });

  it("the first MX host that a provider claims decides", () => {
    assert.equal(providerOf(shipped, ["mx.example.net", "mx01.mail.icloud.com", "aspmx.l.google.com"]), "apple");
  });

  it("the longest matching suffix wins, so an operator can split Outlook.com from Microsoft 365", () => {
    const rules = withOperatorFile(
      "providers:\n  outlook:\n    mx_suffixes: [olc.protection.outlook.com]\n    connections: 2\n",
    );
    assert.equal(providerOf(rules, ["hotmail-com.olc.protection.outlook.com"]), "outlook");
    assert.equal(providerOf(rules, ["contoso-com.mail.protection.outlook.com"]), "microsoft");
  });
});

describe("effectiveRules: most specific level wins, field by field", () => {
  const rules = withOperatorFile(`providers:
  google:
    message_rate: 100/h
domains:
  example.com:
    messages_per_connection: 10
  bücher.example:
    connections: 1
source_ips:
  192.0.2.1:
    message_rate: 50/h
  2001:db8::25:
    idle_timeout: 9s
`);
  const google = ["aspmx.l.google.com", "alt1.aspmx.l.google.com"];

  it("takes each field from the most specific level that sets it, and says which", () => {
    const found = effectiveRules(rules, { sourceIp: "192.0.2.1", recipientDomain: "Example.COM", mxHosts: google });
    assert.equal(found.provider, "google");
    assert.deepEqual(found.limits, {
      connections: { value: 5, from: { level: "provider", key: "google" } },
      connectionRate: { value: "unlimited", from: { level: "default" } },
      messagesPerConnection: { value: 10, from: { level: "domain", key: "example.com" } },
      recipientsPerTransaction: { value: 100, from: { level: "default" } },
      messageRate: { value: { count: 50, per: "h" }, from: { level: "source_ip", key: "192.0.2.1" } },
      idleTimeout: { value: 2000, from: { level: "default" } },
      retrySchedule: {
        value: [300_000, 600_000, 1_200_000, 2_400_000, 3_600_000, 7_200_000, 14_400_000],
        from: { level: "default" },
      },
    });
  });

  it("a provider rule that sets only a rate keeps the shipped provider's connections and the default's idle time", () => {
    const found = effectiveRules(rules, { sourceIp: "198.51.100.9", recipientDomain: "gmail.com", mxHosts: google });
    assert.deepEqual(found.limits.messageRate, {
      value: { count: 100, per: "h" },
      from: { level: "provider", key: "google" },
    });
    assert.deepEqual(found.limits.connections, { value: 5, from: { level: "provider", key: "google" } });
    assert.deepEqual(found.limits.messagesPerConnection, { value: 50, from: { level: "provider", key: "google" } });
    assert.deepEqual(found.limits.idleTimeout, { value: 2000, from: { level: "default" } });
  });

  it("a destination of no known provider gets the default, under its domain's and IP's own fields", () => {
    const found = effectiveRules(rules, { recipientDomain: "example.com", mxHosts: ["mx.example.com"] });
    assert.equal(found.provider, undefined);
    assert.deepEqual(found.limits.connections, { value: 20, from: { level: "default" } });
    assert.deepEqual(found.limits.messagesPerConnection, { value: 10, from: { level: "domain", key: "example.com" } });
    assert.deepEqual(found.limits.messageRate, { value: "unlimited", from: { level: "default" } });
  });

  it("finds an IPv6 source however it is written and a domain by its A-label", () => {
    const found = effectiveRules(rules, {
      sourceIp: "2001:DB8:0:0:0:0:0:25",
      recipientDomain: "BÜCHER.example",
      mxHosts: [],
    });
    assert.deepEqual(found.limits.idleTimeout, { value: 9000, from: { level: "source_ip", key: "2001:db8::25" } });
    assert.deepEqual(found.limits.connections, { value: 1, from: { level: "domain", key: "xn--bcher-kva.example" } });
  });
});
