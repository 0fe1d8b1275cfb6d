import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatShapingError, loadShapingRules, type ShapingLoad, shapingYaml } from "../../src/shaping/load.ts";

/** A complete default section: the least a file that stands alone must have. */
const DEFAULT = `default:
  connections: 20
  connection_rate: 100/min
  messages_per_connection: 100
  recipients_per_transaction: 100
  message_rate: unlimited
  idle_timeout: 2s
  retry: [5m, 10m, 1h]
`;

/** The rules of a file that must load. */
function rulesOf(text: string) {
  const loaded = loadShapingRules(text, "shaping.yaml");
  assert.ok(loaded.ok, loaded.ok ? "" : loaded.errors.map(formatShapingError).join("\n"));
  return loaded.rules;
}

/** The error lines of a file that must not load. */
function errorsOf(text: string, fileName = "shaping.yaml"): string[] {
  const loaded: ShapingLoad = loadShapingRules(text, fileName);
  assert.ok(!loaded.ok, "the file loaded");
  return loaded.errors.map(formatShapingError);
}

describe("shaping file: values", () => {
  it("reads every limit of the default into numbers, rates and durations", () => {
    const rules = rulesOf(DEFAULT);
    assert.deepEqual(rules.default, {
      connections: 20,
      connectionRate: { count: 100, per: "min" },
      messagesPerConnection: 100,
      recipientsPerTransaction: 100,
      messageRate: "unlimited",
      idleTimeout: 2000,
      retrySchedule: [300_000, 600_000, 3_600_000],
    });
    assert.deepEqual([...rules.providers], []);
    assert.deepEqual(rules.automation, []);
    assert.equal(rules.warmup, undefined);
  });

  it("reads rates per second, minute, hour and day in their several spellings", () => {
    const rules = rulesOf(`${DEFAULT}
domains:
  a.test: { message_rate: 5/s }
  b.test: { message_rate: 10/minute }
  c.test: { message_rate: 100/h }
  d.test: { message_rate: 100 / hour }
  e.test: { message_rate: 2000/day }
`);
    assert.deepEqual(
      [...rules.domains].map(([domain, limits]) => [domain, limits.messageRate]),
      [
        ["a.test", { count: 5, per: "s" }],
        ["b.test", { count: 10, per: "min" }],
        ["c.test", { count: 100, per: "h" }],
        ["d.test", { count: 100, per: "h" }],
        ["e.test", { count: 2000, per: "d" }],
      ],
    );
  });

  it("keys domains by their lower case A-label and source IPs by their canonical text", () => {
    const rules = rulesOf(`${DEFAULT}
domains:
  Bücher.Example: { connections: 2 }
source_ips:
  "2001:DB8:0:0::1": { connections: 3 }
  192.0.2.7: { connections: 4 }
`);
    assert.deepEqual([...rules.domains.keys()], ["xn--bcher-kva.example"]);
    assert.deepEqual([...rules.sourceIps.keys()], ["2001:db8::1", "192.0.2.7"]);
  });

  it("reads a provider's MX suffixes in whatever way they are written, and its limits", () => {
    const rules = rulesOf(`${DEFAULT}
providers:
  google:
    mx_suffixes: [Google.com, .googlemail.com, "*.example-google.test"]
    connections: 5
`);
    assert.deepEqual(rules.providers.get("google"), {
      mxSuffixes: ["google.com", "googlemail.com", "example-google.test"],
      limits: { connections: 5 },
    });
  });

  it("reads automation rules in file order, each action with its own fields", () => {
    const rules = rulesOf(`${DEFAULT}
providers:
  yahoo: { mx_suffixes: [yahoodns.net] }
automation:
  slow-down:
    match: { code: 421, enhanced: 4.7.28, text: unusual rate }
    threshold: { matches: 2, within: 1h }
    action: throttle
    limits: { message_rate: 10/min, connections: 1 }
    duration: 30m
    recovery: { steps: 2, every: 15m }
  stop:
    provider: yahoo
    match: { regex: '\\[TS?S04\\]' }
    action: suspend
    duration: 2h
  give-up:
    match: { text: Retrying will NOT succeed }
    action: bounce
`);
    assert.deepEqual(rules.automation, [
      {
        name: "slow-down",
        match: { code: 421, enhanced: "4.7.28", text: "unusual rate" },
        threshold: { matches: 2, within: 3_600_000 },
        action: {
          kind: "throttle",
          limits: { connections: 1, messageRate: { count: 10, per: "min" } },
          duration: 1_800_000,
          recovery: { steps: 2, every: 900_000 },
        },
      },
      {
        name: "stop",
        provider: "yahoo",
        match: { regex: /\[TS?S04\]/i },
        action: { kind: "suspend", duration: 7_200_000 },
      },
      { name: "give-up", match: { text: "Retrying will NOT succeed" }, action: { kind: "bounce" } },
    ]);
  });

  it("reads warmup percentages as fractions and lays each provider's plan over the default's", () => {
    const rules = rulesOf(`${DEFAULT}
providers:
  google: { mx_suffixes: [google.com] }
warmup:
  enabled: true
  default:
    window: 1d
    steps: [{ daily: 50, hourly: 10 }, { daily: 100, hourly: 20 }]
    promote_below: { deferral_rate: 5%, block_rate: 1%, complaint_rate: 0.1% }
    demote_above: { deferral_rate: 20%, block_rate: 5%, complaint_rate: 0.3% }
  providers:
    google:
      steps: [{ daily: 20, hourly: 5 }]
      demote_above: { complaint_rate: 0.2% }
`);
    const warmup = rules.warmup!;
    assert.equal(warmup.enabled, true);
    assert.deepEqual(warmup.default.promoteBelow, { deferralRate: 0.05, blockRate: 0.01, complaintRate: 0.001 });
    assert.deepEqual(warmup.providers.get("google"), {
      window: 86_400_000,
      steps: [{ daily: 20, hourly: 5 }],
      promoteBelow: { deferralRate: 0.05, blockRate: 0.01, complaintRate: 0.001 },
      demoteAbove: { deferralRate: 0.2, blockRate: 0.05, complaintRate: 0.002 },
    });
  });

  it("JSON is read as well, and the document written back as YAML loads to the same rules", () => {
    const json = JSON.stringify({
      default: {
        connections: 3,
        connection_rate: "unlimited",
        messages_per_connection: 10,
        recipients_per_transaction: 50,
        message_rate: "100/h",
        idle_timeout: "5s",
        retry: ["1m"],
      },
      providers: { google: { mx_suffixes: ["google.com"], message_rate: "1/s" } },
      automation: { a: { match: { regex: "x+y" }, action: "bounce" } },
    });
    const loaded = loadShapingRules(json, "body.json");
    assert.ok(loaded.ok);
    const again = loadShapingRules(shapingYaml(loaded.document), "again.yaml");
    assert.ok(again.ok);
    assert.deepEqual(again.rules, loaded.rules);
  });
});

describe("shaping file: errors name the file, the line and the field", () => {
  it("a bad rate", () => {
    assert.deepEqual(
      errorsOf(`${DEFAULT}providers:\n  google:\n    mx_suffixes: [google.com]\n    message_rate: fast\n`),
      [
        'shaping.yaml:12: providers.google.message_rate: expected a rate such as 100/h, 10/min, 5/s, 2000/d, or unlimited, got "fast"',
      ],
    );
  });

  it("an unknown field, with the fields that are known", () => {
    assert.deepEqual(errorsOf(`${DEFAULT}providers:\n  google:\n    mx_suffixes: [google.com]\n    rate: 100/h\n`), [
      "shaping.yaml:12: providers.google.rate: unknown field; known fields: mx_suffixes, connections, connection_rate, " +
      "messages_per_connection, recipients_per_transaction, message_rate, idle_timeout, retry",
    ]);
  });

  it("a bad duration, in a value and in a list", () => {
    assert.deepEqual(
      errorsOf(DEFAULT.replace("idle_timeout: 2s", "idle_timeout: soon").replace("[5m, 10m, 1h]", "[5m, 10, 1h]")),
      [
        'shaping.yaml:7: default.idle_timeout: expected a duration such as 30s, 5m, 2h or 1d, got "soon"',
        "shaping.yaml:8: default.retry[1]: expected a duration such as 30s, 5m, 2h or 1d, got 10",
      ],
    );
  });

  it("a negative number, a zero and a fraction", () => {
    const text =
      `${DEFAULT}domains:\n  a.test:\n    connections: -3\n    messages_per_connection: 0\n    recipients_per_transaction: 1.5\n`;
    assert.deepEqual(errorsOf(text), [
      'shaping.yaml:11: domains."a.test".connections: expected a whole number of at least 1, got -3',
      'shaping.yaml:12: domains."a.test".messages_per_connection: expected a whole number of at least 1, got 0',
      'shaping.yaml:13: domains."a.test".recipients_per_transaction: expected a whole number of at least 1, got 1.5',
    ]);
  });

  it("a value of the wrong type: text for a number, a list for a map, a map for a list", () => {
    const text =
      `${DEFAULT}domains:\n  a.test:\n    connections: "5"\n  b.test: [1, 2]\nproviders:\n  google: { mx_suffixes: { a: 1 } }\n`;
    assert.deepEqual(errorsOf(text), [
      'shaping.yaml:11: domains."a.test".connections: expected a whole number of at least 1, got "5"',
      'shaping.yaml:12: domains."b.test": expected a map of fields (connections, connection_rate, messages_per_connection, ' +
      "recipients_per_transaction, message_rate, idle_timeout, retry), got a list",
      "shaping.yaml:14: providers.google.mx_suffixes: expected a list of host name suffixes such as google.com, got a map",
    ]);
  });

  it("a YAML syntax error, at its line", () => {
    // The list opened on line 11 is found unclosed on line 12.
    const errors = errorsOf(`${DEFAULT}providers:\n  google:\n    mx_suffixes: [google.com\n    connections: 5\n`);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /^shaping\.yaml:12: \w+/);
  });

  it("a key written twice", () => {
    const errors = errorsOf(`${DEFAULT}domains:\n  a.test: { connections: 1 }\n  a.test: { connections: 2 }\n`);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /^shaping\.yaml:11: .*unique/);
  });

  it("two keys that name the same domain", () => {
    assert.deepEqual(errorsOf(`${DEFAULT}domains:\n  a.test: { connections: 1 }\n  A.Test.: { connections: 2 }\n`), [
      'shaping.yaml:11: domains."A.Test.": names the same as "a.test"; write it once',
    ]);
  });

  it("a missing field of the default, at the default's line", () => {
    assert.deepEqual(errorsOf(DEFAULT.replace("  message_rate: unlimited\n", "")), [
      "shaping.yaml:1: default.message_rate: missing; it is required here",
    ]);
    assert.deepEqual(errorsOf("providers: {}\n"), ["shaping.yaml:1: default: missing; it is required here"]);
  });

  it("keys that are no domain, no address, no name", () => {
    const text =
      `${DEFAULT}domains:\n  "not a domain": {}\nsource_ips:\n  192.0.2.300: {}\nproviders:\n  Google: { mx_suffixes: [com] }\n`;
    assert.deepEqual(errorsOf(text), [
      'shaping.yaml:10: domains."not a domain": expected a domain name as the key, got "not a domain"',
      'shaping.yaml:12: source_ips."192.0.2.300": expected an IPv4 or IPv6 address as the key, got "192.0.2.300"',
      "shaping.yaml:14: providers.Google: expected a name of lower case letters, digits, '.', '_' and '-', starting with a letter as the key, got \"Google\"",
      'shaping.yaml:14: providers.Google.mx_suffixes[0]: expected a host name suffix of at least two labels, such as google.com, got "com"',
    ]);
  });

  it("automation: an unknown action, a field its action does not take, a bad pattern, an empty match", () => {
    const text = `${DEFAULT}automation:
  a:
    match: { code: 421 }
    action: explode
  b:
    match: { text: x }
    action: suspend
    duration: 1h
    limits: { connections: 1 }
  c:
    match: { regex: "([" }
    action: bounce
  d:
    match: {}
    action: bounce
  e:
    match: { code: 250, enhanced: "4.7" }
    action: throttle
    limits: {}
    duration: 0s
`;
    const errors = errorsOf(text);
    assert.deepEqual(
      errors.map((e) => e.replace(/regular expression: .*/, "regular expression: ...")),
      [
        'shaping.yaml:12: automation.a.action: expected throttle, suspend or bounce, got "explode"',
        "shaping.yaml:17: automation.b.limits: unknown field; known fields: provider, match, threshold, action, duration",
        "shaping.yaml:19: automation.c.match.regex: expected a regular expression: ...",
        "shaping.yaml:22: automation.d.match: expected at least one of code, enhanced, text, regex",
        "shaping.yaml:25: automation.e.match.code: expected a reply code from 400 to 599, got 250",
        'shaping.yaml:25: automation.e.match.enhanced: expected an enhanced status code such as 4.7.28, got "4.7"',
        "shaping.yaml:27: automation.e.limits: expected at least one limit to tighten",
        'shaping.yaml:28: automation.e.duration: expected a duration such as 30s, 5m, 2h or 1d, got "0s"',
      ],
    );
  });

  it("parts of the file that contradict each other", () => {
    const text = `${DEFAULT}providers:
  google: { mx_suffixes: [google.com] }
  second: { mx_suffixes: [google.com] }
automation:
  a:
    provider: gogle
    match: { code: 421 }
    action: bounce
warmup:
  enabled: false
  default:
    window: 1d
    steps: [{ daily: 100, hourly: 10 }, { daily: 50, hourly: 10 }]
    promote_below: { deferral_rate: 5%, block_rate: 1%, complaint_rate: 0.1% }
    demote_above: { deferral_rate: 20%, block_rate: 5%, complaint_rate: 0.3% }
  providers:
    google:
      promote_below: { complaint_rate: 0.5% }
    yahoo: {}
`;
    assert.deepEqual(errorsOf(text), [
      "shaping.yaml:21: warmup.default.steps[1]: the daily cap 50 is below the previous step's 100; steps only grow",
    ]);
    assert.deepEqual(errorsOf(text.replace("{ daily: 50, hourly: 10 }", "{ daily: 150, hourly: 10 }")), [
      'shaping.yaml:11: providers.second.mx_suffixes: "google.com" is already a suffix of provider google',
      "shaping.yaml:14: automation.a.provider: names no provider; the providers are google, second",
      "shaping.yaml:26: warmup.providers.google.promote_below.complaint_rate: 0.5% is above demote_above's 0.3%; promotion must need lower rates than demotion",
      "shaping.yaml:27: warmup.providers.yahoo: names no provider; the providers are google, second",
    ]);
  });

  it("no provider may be named other: warmup counts the unmatched destinations under that name", () => {
    assert.deepEqual(errorsOf(`${DEFAULT}providers:\n  other: { mx_suffixes: [example.net] }\n`), [
      'shaping.yaml:10: providers.other: the name "other" is reserved: warmup counts the destinations no provider matches under it',
    ]);
  });

  it("lists every problem of a file, not only the first, in line order", () => {
    const text = `default:
  connections: many
  connection_rate: 100/min
  messages_per_connection: 100
  recipients_per_transaction: 100
  message_rate: 10/fortnight
  idle_timeout: 2s
  retry: []
domains:
  a.test: { colour: blue }
`;
    assert.deepEqual(errorsOf(text, "/etc/relay/shaping.yaml"), [
      '/etc/relay/shaping.yaml:2: default.connections: expected a whole number of at least 1, got "many"',
      '/etc/relay/shaping.yaml:6: default.message_rate: expected a rate such as 100/h, 10/min, 5/s, 2000/d, or unlimited, got "10/fortnight"',
      "/etc/relay/shaping.yaml:8: default.retry: expected at least one of durations such as 5m, got an empty list",
      '/etc/relay/shaping.yaml:10: domains."a.test".colour: unknown field; known fields: connections, connection_rate, ' +
      "messages_per_connection, recipients_per_transaction, message_rate, idle_timeout, retry",
    ]);
  });

  it("a file that is not a map at all", () => {
    assert.deepEqual(errorsOf("- default\n"), [
      "shaping.yaml:1: expected a map of fields (default, providers, domains, source_ips, automation, warmup), got a list",
    ]);
  });
});
