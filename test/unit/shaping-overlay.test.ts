import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatShapingError, loadShapingRules, type ShapingDocument } from "../../src/shaping/load.ts";

/** Stands for the shipped rules. */
const BASE_TEXT = `default:
  connections: 20
  connection_rate: 100/min
  messages_per_connection: 100
  recipients_per_transaction: 100
  message_rate: unlimited
  idle_timeout: 2s
  retry: [5m, 10m, 1h]
providers:
  google:
    mx_suffixes: [google.com, googlemail.com]
    connections: 5
    messages_per_connection: 50
  yahoo:
    mx_suffixes: [yahoodns.net]
automation:
  google-slow:
    provider: google
    match: { code: 421, enhanced: 4.7.28 }
    action: throttle
    limits: { message_rate: 10/min }
    duration: 30m
  any-busy:
    match: { text: server busy }
    action: suspend
    duration: 15m
warmup:
  enabled: false
  default:
    window: 1d
    steps: [{ daily: 50, hourly: 10 }, { daily: 100, hourly: 20 }]
    promote_below: { deferral_rate: 5%, block_rate: 1%, complaint_rate: 0.1% }
    demote_above: { deferral_rate: 20%, block_rate: 5%, complaint_rate: 0.3% }
`;

function base(): ShapingDocument {
  const loaded = loadShapingRules(BASE_TEXT, "base.yaml");
  assert.ok(loaded.ok);
  return loaded.document;
}

function over(text: string) {
  const loaded = loadShapingRules(text, "operator.yaml", base());
  assert.ok(loaded.ok, loaded.ok ? "" : loaded.errors.map(formatShapingError).join("\n"));
  return loaded.rules;
}

describe("an operator's shaping file over the shipped one", () => {
  it("an empty file, or one of comments only, changes nothing", () => {
    const shipped = loadShapingRules(BASE_TEXT, "base.yaml");
    assert.ok(shipped.ok);
    assert.deepEqual(over(""), shipped.rules);
    assert.deepEqual(over("# nothing to change\n"), shipped.rules);
  });

  it("a provider entry that sets only a rate keeps the shipped suffixes and connections", () => {
    const rules = over("providers:\n  google:\n    message_rate: 100/h\n");
    assert.deepEqual(rules.providers.get("google"), {
      mxSuffixes: ["google.com", "googlemail.com"],
      limits: { connections: 5, messagesPerConnection: 50, messageRate: { count: 100, per: "h" } },
    });
    assert.deepEqual(rules.providers.get("yahoo")?.mxSuffixes, ["yahoodns.net"]);
  });

  it("the default is changed field by field; a list is replaced whole", () => {
    const rules = over("default:\n  connections: 8\n  retry: [1m]\n");
    assert.equal(rules.default.connections, 8);
    assert.deepEqual(rules.default.retrySchedule, [60_000]);
    assert.equal(rules.default.messagesPerConnection, 100);
  });

  it("adds providers, domains and source IPs to the shipped ones", () => {
    const rules = over(`providers:
  example:
    mx_suffixes: [mx.example.net]
    connections: 1
domains:
  example.org: { message_rate: 1/s }
source_ips:
  192.0.2.1: { connections: 2 }
`);
    assert.deepEqual([...rules.providers.keys()], ["google", "yahoo", "example"]);
    assert.deepEqual([...rules.domains.keys()], ["example.org"]);
    assert.deepEqual([...rules.sourceIps.keys()], ["192.0.2.1"]);
  });

  it("null removes a shipped entry, or a shipped field so that the default's applies", () => {
    const rules = over("providers:\n  yahoo: null\n  google:\n    connections: ~\n");
    assert.deepEqual([...rules.providers.keys()], ["google"]);
    assert.deepEqual(rules.providers.get("google")?.limits, { messagesPerConnection: 50 });
  });

  it("an automation rule of the same name is replaced whole, so another action leaves no field behind", () => {
    const rules = over(`automation:
  google-slow:
    provider: google
    match: { code: 421, enhanced: 4.7.28 }
    action: suspend
    duration: 1h
`);
    assert.deepEqual(rules.automation.find((r) => r.name === "google-slow")?.action, {
      kind: "suspend",
      duration: 3_600_000,
    });
  });

  it("the operator's automation rules are tried first; null removes a shipped rule", () => {
    const rules = over(`automation:
  mine:
    match: { text: try later }
    action: bounce
  any-busy: null
`);
    assert.deepEqual(rules.automation.map((r) => r.name), ["mine", "google-slow"]);
  });

  it("warmup changes field by field: switched on, one threshold moved, the steps kept", () => {
    const rules = over("warmup:\n  enabled: true\n  default:\n    demote_above: { complaint_rate: 0.25% }\n");
    assert.equal(rules.warmup?.enabled, true);
    assert.deepEqual(rules.warmup?.default.demoteAbove, { deferralRate: 0.2, blockRate: 0.05, complaintRate: 0.0025 });
    assert.equal(rules.warmup?.default.steps.length, 2);
  });

  it("errors name the operator's file and lines, including what the merge leaves incomplete", () => {
    const loaded = loadShapingRules(
      `# my changes
providers:
  google:
    message_rate: quick
  newcomer:
    connections: 2
automation:
  mine:
    provider: nobody
    match: { code: 421 }
    action: bounce
`,
      "/etc/relay/shaping.yaml",
      base(),
    );
    assert.ok(!loaded.ok);
    assert.deepEqual(loaded.errors.map(formatShapingError), [
      '/etc/relay/shaping.yaml:4: providers.google.message_rate: expected a rate such as 100/h, 10/min, 5/s, 2000/d, or unlimited, got "quick"',
      "/etc/relay/shaping.yaml:5: providers.newcomer.mx_suffixes: missing; it is required here",
    ]);
    const fixed = loadShapingRules(
      "providers:\n  newcomer:\n    mx_suffixes: [example.net]\nautomation:\n  mine:\n    provider: nobody\n    match: { code: 421 }\n    action: bounce\n",
      "/etc/relay/shaping.yaml",
      base(),
    );
    assert.ok(!fixed.ok);
    assert.deepEqual(fixed.errors.map(formatShapingError), [
      "/etc/relay/shaping.yaml:6: automation.mine.provider: names no provider; the providers are google, yahoo, newcomer",
    ]);
  });

  it("removing a provider that a shipped rule names is an error naming the rule", () => {
    const loaded = loadShapingRules("providers:\n  google: null\n", "operator.yaml", base());
    assert.ok(!loaded.ok);
    assert.deepEqual(loaded.errors.map(formatShapingError), [
      "operator.yaml:1: automation.google-slow.provider: names no provider; the providers are yahoo",
    ]);
  });

  it("leaves the shipped document as it was", () => {
    const shipped = base();
    const before = JSON.stringify(shipped);
    const loaded = loadShapingRules(
      "providers:\n  yahoo: null\n  google: { connections: 1 }\nautomation:\n  any-busy: null\n",
      "operator.yaml",
      shipped,
    );
    assert.ok(loaded.ok);
    assert.equal(JSON.stringify(shipped), before);
  });
});
