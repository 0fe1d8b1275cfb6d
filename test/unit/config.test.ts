import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fieldName } from "../../src/config/field-names.ts";
import { loadConfig } from "../../src/config/load.ts";
import { configSchema } from "../../src/config/schema.ts";
import { parseDnsServers, parseDurations, parseListeners } from "../../src/config/parsers.ts";
import { parseHostPort, parsePort } from "../../src/core/host-port.ts";
import { namedRoute, parseRoutes } from "../../src/core/route.ts";
import { cidrContains } from "../../src/core/cidr.ts";
import { UsageError } from "../../src/core/errors.ts";

const load = (env: Record<string, string | undefined>) => loadConfig(env, "sys.example");

/** The UsageError's problems; fails the test when loading succeeds or throws something else. */
function problemsOf(env: Record<string, string | undefined>): readonly string[] {
  try {
    load(env);
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    assert.equal(error.message, error.problems.join("\n"));
    return error.problems;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be refused`);
}

/** One invalid value for every RELAY_* variable of SPEC.md's Configuration table. */
const INVALID: Record<string, string> = {
  RELAY_DATA_DIR: "   ",
  RELAY_DB_URL: "postgres://db.example/relay",
  RELAY_HOSTNAME: "bad_host!",
  RELAY_SMTP_LISTEN: "0.0.0.0",
  RELAY_SMTPS_LISTEN: "0.0.0.0:465,0.0.0.0:99999",
  RELAY_HTTP_LISTEN: "localhost",
  RELAY_TLS_CERT_FILE: "   ",
  RELAY_TLS_KEY_FILE: "   ",
  RELAY_SOURCE_IP: "not an ip!",
  RELAY_RELAY_NETWORKS: "127.0.0.0/8,10.0.0.0/33",
  RELAY_ADMIN_TOKEN: "too-short",
  RELAY_DNS_SERVERS: "1.1.1.1:70000",
  RELAY_MX_PORT: "0",
  RELAY_ROUTES: "example.com",
  RELAY_MAX_MESSAGE_BYTES: "-1",
  RELAY_MAX_RECIPIENTS: "0",
  RELAY_RETRY_SCHEDULE: "5m,soon",
  RELAY_MAX_QUEUE_TIME: "5 days",
  RELAY_BOUNCE_DOMAIN: "-bad-",
  RELAY_PUBLIC_URL: "http://relay.example.com",
  RELAY_NODE_ID: "   ",
  RELAY_SHARED_DB_URL: "mysql://db.example",
  RELAY_SHARED_DB_TOKEN: "   ",
  RELAY_DURABILITY: "eventual",
  RELAY_MILTERS: "inet:127.0.0.1:11332 default=maybe",
  RELAY_MILTER_SCOPE: "users,everyone",
  RELAY_SANDBOX: "maybe",
  RELAY_LOG_LEVEL: "loud",
  RELAY_LOG_FORMAT: "xml",
};

describe("loadConfig defaults (SPEC.md, Configuration)", () => {
  it("gives every documented default when nothing is set", () => {
    const c = load({ PATH: "/usr/bin", HOME: "/root" });
    assert.equal(c.dataDir, "./data");
    assert.equal(c.dbUrl, "file:./data/relay.db");
    assert.equal(c.hostname, "sys.example");
    assert.deepEqual(c.smtpListen, [{ host: "0.0.0.0", port: 2525 }]);
    assert.deepEqual(c.smtpsListen, []);
    assert.deepEqual(c.httpListen, { host: "127.0.0.1", port: 8025 });
    assert.equal(c.tlsCertFile, undefined);
    assert.equal(c.tlsKeyFile, undefined);
    assert.equal(c.sourceIp, undefined);
    assert.deepEqual(c.relayNetworks.map((n) => n.text), ["127.0.0.0/8", "::1/128"]);
    assert.equal(c.adminToken, undefined);
    assert.equal(c.dnsServers, undefined);
    assert.equal(c.mxPort, 25);
    assert.deepEqual(c.routes, []);
    assert.equal(c.maxMessageBytes, 26214400);
    assert.equal(c.maxRecipients, 1000);
    // Unset: the shaping rules' default level's schedule applies (src/app/shaping-file.ts).
    assert.equal(c.retrySchedule, undefined);
    assert.equal(c.greylistRetry, 5 * 60_000);
    assert.equal(c.maxQueueTime, 5 * 86_400_000);
    assert.equal(c.bounceDomain, undefined);
    assert.equal(c.nodeId, "sys.example");
    assert.equal(c.sharedDbUrl, undefined);
    assert.equal(c.sharedDbToken, undefined);
    assert.equal(c.durability, "local");
    assert.equal(c.sandbox, false);
    assert.equal(c.logLevel, "info");
    assert.equal(c.logFormat, "json");
  });

  it("the default relay networks are loopback only", () => {
    const { relayNetworks } = load({});
    assert.ok(cidrContains(relayNetworks, "127.0.0.1"));
    assert.ok(cidrContains(relayNetworks, "127.255.0.9"));
    assert.ok(cidrContains(relayNetworks, "::1"));
    assert.ok(cidrContains(relayNetworks, "::ffff:127.0.0.1"));
    assert.ok(!cidrContains(relayNetworks, "10.0.0.1"));
    assert.ok(!cidrContains(relayNetworks, "::2"));
  });

  it("treats an empty variable as unset", () => {
    const c = load({ RELAY_MX_PORT: "", RELAY_LOG_LEVEL: "", RELAY_ROUTES: "" });
    assert.equal(c.mxPort, 25);
    assert.equal(c.logLevel, "info");
    assert.deepEqual(c.routes, []);
  });

  it("ignores variables outside RELAY_*", () => {
    assert.equal(load({ MX_PORT: "abc", relay_mx_port: "abc" }).mxPort, 25);
  });
});

describe("configuration field names", () => {
  it("are the variable's name without RELAY_, in camelCase, the same at run time as in the type", () => {
    // The annotation holds the type-level names to the same text as the assertion holds the run-time ones.
    const names: ["maxConnectionsPerIp", "dbUrl", "tlsrptInterval", "sandbox"] = [
      fieldName("RELAY_MAX_CONNECTIONS_PER_IP"),
      fieldName("RELAY_DB_URL"),
      fieldName("RELAY_TLSRPT_INTERVAL"),
      fieldName("RELAY_SANDBOX"),
    ];
    assert.deepEqual(names, ["maxConnectionsPerIp", "dbUrl", "tlsrptInterval", "sandbox"]);
  });

  it("every variable of the schema is a field of the configuration, and nothing else is", () => {
    const config = load({});
    const variables = Object.keys(configSchema.entries) as `RELAY_${string}`[];
    assert.deepEqual(Object.keys(config).sort(), variables.map((variable) => fieldName(variable)).sort());
  });
});

describe("loadConfig derived values", () => {
  it("derives dbUrl from RELAY_DATA_DIR, with or without a trailing slash", () => {
    assert.equal(load({ RELAY_DATA_DIR: "/var/lib/relay" }).dbUrl, "file:/var/lib/relay/relay.db");
    assert.equal(load({ RELAY_DATA_DIR: "/var/lib/relay/" }).dbUrl, "file:/var/lib/relay/relay.db");
    assert.equal(load({ RELAY_DATA_DIR: "/var/lib/relay/" }).dataDir, "/var/lib/relay/");
  });

  it("an explicit RELAY_DB_URL wins over the derived one", () => {
    const c = load({ RELAY_DATA_DIR: "/d", RELAY_DB_URL: "libsql://db.example.com" });
    assert.equal(c.dbUrl, "libsql://db.example.com");
    assert.equal(c.dataDir, "/d");
  });

  it("RELAY_HOSTNAME and RELAY_NODE_ID override the system host name separately", () => {
    const a = load({ RELAY_HOSTNAME: "mx1.example.com" });
    assert.equal(a.hostname, "mx1.example.com");
    assert.equal(a.nodeId, "sys.example");
    const b = load({ RELAY_NODE_ID: "node-7" });
    assert.equal(b.hostname, "sys.example");
    assert.equal(b.nodeId, "node-7");
  });

  it("lower-cases the bounce domain and the ARC domain", () => {
    assert.equal(load({ RELAY_BOUNCE_DOMAIN: "Bounces.Example.COM" }).bounceDomain, "bounces.example.com");
    assert.equal(load({ RELAY_ARC_DOMAIN: "Example.COM" }).arcDomain, "example.com");
  });

  it("RELAY_PRIORITY_HEADER is a header field name, unset by default", () => {
    assert.equal(load({}).priorityHeader, undefined);
    assert.equal(load({ RELAY_PRIORITY_HEADER: " X-Relay-Priority " }).priorityHeader, "X-Relay-Priority");
    for (const bad of ["X Priority", "X-Priority:", "Prioritä", "x".repeat(77)]) {
      assert.deepEqual(problemsOf({ RELAY_PRIORITY_HEADER: bad }), [
        `RELAY_PRIORITY_HEADER: expected a header field name such as X-Relay-Priority, got ${JSON.stringify(bad)}`,
      ]);
    }
  });

  it("RELAY_SUPPRESS_BOUNCE_CATEGORIES is a list of bounce categories, or none", () => {
    assert.deepEqual(load({}).suppressBounceCategories, ["bad-mailbox", "bad-domain", "inactive-mailbox"]);
    assert.deepEqual(
      load({ RELAY_SUPPRESS_BOUNCE_CATEGORIES: "bad-mailbox, policy-related" }).suppressBounceCategories,
      ["bad-mailbox", "policy-related"],
    );
    assert.deepEqual(load({ RELAY_SUPPRESS_BOUNCE_CATEGORIES: "none" }).suppressBounceCategories, []);
    const [problem] = problemsOf({ RELAY_SUPPRESS_BOUNCE_CATEGORIES: "bad-mailbox,nosuch" });
    assert.match(
      problem!,
      /^RELAY_SUPPRESS_BOUNCE_CATEGORIES: expected a comma list of bounce categories \(bad-mailbox, /,
    );
    assert.ok(problem!.endsWith(`got "bad-mailbox,nosuch"`), problem);
  });

  it("reads booleans and enumerations", () => {
    for (const t of ["true", "1", "yes", "TRUE", " Yes "]) assert.equal(load({ RELAY_SANDBOX: t }).sandbox, true, t);
    for (const f of ["false", "0", "no", "No"]) assert.equal(load({ RELAY_SANDBOX: f }).sandbox, false, f);
    assert.equal(load({ RELAY_DURABILITY: "local" }).durability, "local");
    assert.equal(load({ RELAY_LOG_LEVEL: "debug", RELAY_LOG_FORMAT: "text" }).logLevel, "debug");
    assert.equal(load({ RELAY_LOG_FORMAT: "pretty" }).logFormat, "pretty");
    assert.equal(load({ RELAY_LOG_FORMAT: "text" }).logFormat, "pretty", "the old name is an alias");
  });

  it("reads the webhook settings: private addresses refused, 10 s deadline, 5 s first retry by default", () => {
    const c = load({});
    assert.deepEqual([c.webhookAllowPrivate, c.webhookTimeout, c.webhookBackoff], [false, 10_000, 5000]);
    const set = load({ RELAY_WEBHOOK_ALLOW_PRIVATE: "true", RELAY_WEBHOOK_TIMEOUT: "2s", RELAY_WEBHOOK_BACKOFF: "1m" });
    assert.deepEqual([set.webhookAllowPrivate, set.webhookTimeout, set.webhookBackoff], [true, 2000, 60_000]);
    assert.deepEqual(problemsOf({ RELAY_WEBHOOK_TIMEOUT: "500ms", RELAY_WEBHOOK_ALLOW_PRIVATE: "maybe" }), [
      'RELAY_WEBHOOK_ALLOW_PRIVATE: expected true or false, got "maybe"',
      'RELAY_WEBHOOK_TIMEOUT: expected a duration of at least 1s such as 10s, got "500ms"',
    ]);
  });

  it("reads positive integers, ports and tokens", () => {
    const c = load({ RELAY_MAX_MESSAGE_BYTES: "1048576", RELAY_MAX_RECIPIENTS: "5", RELAY_MX_PORT: "2525" });
    assert.equal(c.maxMessageBytes, 1048576);
    assert.equal(c.maxRecipients, 5);
    assert.equal(c.mxPort, 2525);
    assert.equal(load({ RELAY_MX_PORT: "65535" }).mxPort, 65535);
    assert.equal(load({ RELAY_ADMIN_TOKEN: "0123456789abcdef" }).adminToken, "0123456789abcdef");
  });
});

describe("RELAY_PUBLIC_URL", () => {
  it("takes an https URL, or http on a loopback host, without its trailing slash", () => {
    assert.equal(load({}).publicUrl, undefined);
    assert.equal(load({ RELAY_PUBLIC_URL: "https://relay.example.com/" }).publicUrl, "https://relay.example.com");
    assert.equal(load({ RELAY_PUBLIC_URL: "https://example.com/mail//" }).publicUrl, "https://example.com/mail");
    assert.equal(load({ RELAY_PUBLIC_URL: "http://127.0.0.1:8025" }).publicUrl, "http://127.0.0.1:8025");
    assert.equal(load({ RELAY_PUBLIC_URL: "http://[::1]:8025" }).publicUrl, "http://[::1]:8025");
  });

  for (
    const bad of [
      "relay.example.com",
      "ftp://relay.example.com",
      "http://10.0.0.1",
      "https://a.test/?x=1",
      "https://u:p@a.test",
    ]
  ) {
    it(`refuses ${bad}`, () => {
      assert.match(problemsOf({ RELAY_PUBLIC_URL: bad }).join("\n"), /^RELAY_PUBLIC_URL: expected an https URL/);
    });
  }
});

describe("loadConfig errors", () => {
  for (const [name, value] of Object.entries(INVALID)) {
    it(`reports ${name}=${JSON.stringify(value)} by name, quoting the value`, () => {
      const problems = problemsOf({ [name]: value });
      const mine = problems.filter((p) => p.startsWith(`${name}: `));
      assert.equal(mine.length, 1, `${name} missing from ${JSON.stringify(problems)}`);
      assert.match(mine[0]!, /expected /);
      assert.ok(mine[0]!.includes(JSON.stringify(value)), `the problem quotes the value: ${mine[0]}`);
    });
  }

  it("reports every invalid variable in one UsageError, not only the first", () => {
    const problems = problemsOf(INVALID);
    const named = Object.keys(INVALID).filter((name) => problems.some((p) => p.startsWith(`${name}: `)));
    assert.deepEqual(named, Object.keys(INVALID));
    assert.equal(problems.length, Object.keys(INVALID).length);
  });

  it("refuses port 65536, a port of 0 for MX, and non-numeric ports", () => {
    assert.ok(problemsOf({ RELAY_MX_PORT: "65536" })[0]!.startsWith("RELAY_MX_PORT: "));
    assert.ok(problemsOf({ RELAY_MX_PORT: "25a" })[0]!.startsWith("RELAY_MX_PORT: "));
    assert.ok(problemsOf({ RELAY_HTTP_LISTEN: "127.0.0.1:65536" })[0]!.startsWith("RELAY_HTTP_LISTEN: "));
  });

  it("refuses RELAY_TLS_CERT_FILE without RELAY_TLS_KEY_FILE, and the reverse", () => {
    for (const env of [{ RELAY_TLS_CERT_FILE: "/etc/relay/cert.pem" }, { RELAY_TLS_KEY_FILE: "/etc/relay/key.pem" }]) {
      const problems = problemsOf(env);
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /RELAY_TLS_CERT_FILE/);
      assert.match(problems[0]!, /RELAY_TLS_KEY_FILE/);
    }
    const both = load({ RELAY_TLS_CERT_FILE: "/etc/relay/cert.pem", RELAY_TLS_KEY_FILE: "/etc/relay/key.pem" });
    assert.equal(both.tlsCertFile, "/etc/relay/cert.pem");
    assert.equal(both.tlsKeyFile, "/etc/relay/key.pem");
  });

  it(
    "reports a lone RELAY_TLS_CERT_FILE together with the other invalid variables",
    {},
    () => {
      const problems = problemsOf({ RELAY_MX_PORT: "abc", RELAY_TLS_CERT_FILE: "/etc/relay/cert.pem" });
      assert.ok(problems.some((p) => p.startsWith("RELAY_MX_PORT: ")), JSON.stringify(problems));
      assert.ok(problems.some((p) => p.includes("RELAY_TLS_KEY_FILE")), JSON.stringify(problems));
    },
  );

  it("refuses RELAY_DURABILITY=replicated without the shared server that would hold the copies", () => {
    assert.deepEqual(problemsOf({ RELAY_DURABILITY: "replicated" }), [
      "RELAY_DURABILITY: replicated needs RELAY_SHARED_DB_URL, the fleet's shared server that holds the copies",
    ]);
    const config = load({ RELAY_DURABILITY: "replicated", RELAY_SHARED_DB_URL: "libsql://fleet.example" });
    assert.equal(config.durability, "replicated");
  });

  it("reads the fleet's shared server: a server URL, its token only with it", () => {
    const config = load({ RELAY_SHARED_DB_URL: "libsql://fleet.example", RELAY_SHARED_DB_TOKEN: "secret-token" });
    assert.equal(config.sharedDbUrl, "libsql://fleet.example");
    assert.equal(config.sharedDbToken, "secret-token");
    assert.equal(config.nodeDeadAfter, 120_000);
    assert.match(problemsOf({ RELAY_SHARED_DB_URL: "file:/var/lib/relay/shared.db" })[0]!, /^RELAY_SHARED_DB_URL: /);
    assert.deepEqual(problemsOf({ RELAY_SHARED_DB_TOKEN: "secret-token" }), [
      "RELAY_SHARED_DB_TOKEN: set without RELAY_SHARED_DB_URL, the server it is for",
    ]);
  });

  it("accepts IPv4 and IPv6 literals for RELAY_SOURCE_IP", () => {
    assert.equal(load({ RELAY_SOURCE_IP: "192.0.2.10" }).sourceIp, "192.0.2.10");
    assert.equal(load({ RELAY_SOURCE_IP: "2001:db8::25" }).sourceIp, "2001:db8::25");
  });

  it(
    "refuses a RELAY_SOURCE_IP that is not an IP address",
    {},
    () => {
      for (const value of ["mail.example.com", "999.1.1.1", "1.2.3"]) {
        const problems = problemsOf({ RELAY_SOURCE_IP: value });
        assert.ok(problems[0]!.startsWith("RELAY_SOURCE_IP: "), value);
      }
    },
  );
});

describe("host:port parsing", () => {
  it("parses host:port and [v6]:port", () => {
    assert.deepEqual(parseHostPort("127.0.0.1:2525"), { host: "127.0.0.1", port: 2525 });
    assert.deepEqual(parseHostPort("mx.example.com:25"), { host: "mx.example.com", port: 25 });
    assert.deepEqual(parseHostPort("[::1]:2525"), { host: "::1", port: 2525 });
    assert.deepEqual(parseHostPort("[2001:db8::1]:0"), { host: "2001:db8::1", port: 0 });
    assert.deepEqual(parseHostPort("  [::]:587 "), { host: "::", port: 587 });
  });

  it("uses the default port only when one is given", () => {
    assert.equal(parseHostPort("mx.example.com"), undefined);
    assert.equal(parseHostPort("[::1]"), undefined);
    assert.deepEqual(parseHostPort("mx.example.com", 25), { host: "mx.example.com", port: 25 });
    assert.deepEqual(parseHostPort("[::1]", 53), { host: "::1", port: 53 });
  });

  it("refuses unbracketed IPv6 with a port, bad ports and bad hosts", () => {
    assert.equal(parseHostPort("::1:25"), undefined);
    assert.deepEqual(parseHostPort("::1", 53), { host: "::1", port: 53 });
    assert.equal(parseHostPort("host:"), undefined);
    assert.equal(parseHostPort(":25"), undefined);
    assert.equal(parseHostPort("host:65536"), undefined);
    assert.equal(parseHostPort("host:-1"), undefined);
    assert.equal(parseHostPort("ho st:25"), undefined);
    assert.equal(parseHostPort("[::1]:x"), undefined);
    assert.equal(parsePort("123456"), undefined);
    assert.equal(parsePort("65535"), 65535);
  });

  it("reads listener lists through the config", () => {
    const c = load({
      RELAY_SMTP_LISTEN: "0.0.0.0:25, [::]:587",
      RELAY_SMTPS_LISTEN: "[::1]:465",
      RELAY_HTTP_LISTEN: "[::1]:8080",
    });
    assert.deepEqual(c.smtpListen, [{ host: "0.0.0.0", port: 25 }, { host: "::", port: 587 }]);
    assert.deepEqual(c.smtpsListen, [{ host: "::1", port: 465 }]);
    assert.deepEqual(c.httpListen, { host: "::1", port: 8080 });
    assert.equal(parseListeners("0.0.0.0:25,0.0.0.0"), undefined, "one bad item refuses the list");
  });
});

describe("RELAY_ROUTES", () => {
  it("parses domain=host:port pairs, lower-cases domains, keeps * and defaults to port 25", () => {
    const c = load({
      RELAY_ROUTES: "Example.COM=mx.example.net:2525; *=smarthost.example ; v6.test=[2001:db8::1]:2526",
    });
    assert.deepEqual(c.routes, [
      { domain: "example.com", target: { host: "mx.example.net", port: 2525 } },
      { domain: "*", target: { host: "smarthost.example", port: 25 } },
      { domain: "v6.test", target: { host: "2001:db8::1", port: 2526 } },
    ]);
  });

  it("names address literals in canonical form (RFC 5321 4.1.3)", () => {
    assert.deepEqual(
      parseRoutes("[127.0.0.1]=127.0.0.1:2526; [IPv6:::1]=[::1]:2526; [IPv6:::FFFF:10.0.0.001]=10.0.0.1"),
      [
        { domain: "[127.0.0.1]", target: { host: "127.0.0.1", port: 2526 } },
        { domain: "[ipv6:::1]", target: { host: "::1", port: 2526 } },
        { domain: "[10.0.0.1]", target: { host: "10.0.0.1", port: 25 } },
      ],
    );
    const route = { domain: "[127.0.0.1]", target: { host: "127.0.0.1", port: 2526 } };
    assert.equal(namedRoute([route], "[127.000.0.1]"), route);
    assert.equal(namedRoute([route], "[IPv6:::ffff:7f00:1]"), route);
    assert.equal(namedRoute([route], "[127.0.0.2]"), undefined);
    assert.equal(namedRoute([{ domain: "*", target: route.target }], "[127.0.0.1]"), undefined, "* is not a name");
  });

  it("refuses pairs without a domain, without a target, or with a bad domain", () => {
    for (
      const text of [
        "=host:25",
        "example.com=",
        "example.com",
        "exa mple.com=host:25",
        "*.example.com=host:25",
        "a=b:99999",
        "[1.2.3]=host:25",
        "[256.0.0.1]=host:25",
        "[x-tag:abc]=host:25",
        "[IPv6:1::2::3]=host:25",
        "[127.0.0.1=host:25",
      ]
    ) {
      assert.equal(parseRoutes(text), undefined, text);
    }
    assert.ok(problemsOf({ RELAY_ROUTES: "ok.example=h:25;=h:25" })[0]!.startsWith("RELAY_ROUTES: "));
  });
});

describe("RELAY_DNS_SERVERS", () => {
  it("defaults each server's port to 53", () => {
    const c = load({ RELAY_DNS_SERVERS: "192.0.2.53, [2001:db8::53], 127.0.0.1:5353, [::1]:5300" });
    assert.deepEqual(c.dnsServers, [
      { host: "192.0.2.53", port: 53 },
      { host: "2001:db8::53", port: 53 },
      { host: "127.0.0.1", port: 5353 },
      { host: "::1", port: 5300 },
    ]);
    assert.deepEqual(parseDnsServers("9.9.9.9"), [{ host: "9.9.9.9", port: 53 }]);
  });

  it(
    "accepts a bare IPv6 address (ip[:port] with no port)",
    {},
    () => {
      assert.deepEqual(load({ RELAY_DNS_SERVERS: "2001:db8::53" }).dnsServers, [{ host: "2001:db8::53", port: 53 }]);
    },
  );

  it(
    "refuses a host name where an IP is expected",
    {},
    () => {
      assert.ok(problemsOf({ RELAY_DNS_SERVERS: "dns.example.com" })[0]!.startsWith("RELAY_DNS_SERVERS: "));
    },
  );
});

describe("RELAY_RETRY_SCHEDULE and durations", () => {
  it("parses a comma list of durations, spaces and empty items ignored", () => {
    assert.deepEqual(load({ RELAY_RETRY_SCHEDULE: "30s, 1.5h ,,2d" }).retrySchedule, [30_000, 5_400_000, 172_800_000]);
    assert.deepEqual(parseDurations("250ms"), [250]);
  });

  it("refuses an empty list and any bad item", () => {
    assert.equal(parseDurations(" , "), undefined);
    assert.equal(parseDurations("5m,10"), undefined);
    assert.ok(problemsOf({ RELAY_RETRY_SCHEDULE: " , " })[0]!.startsWith("RELAY_RETRY_SCHEDULE: "));
  });

  it("reads RELAY_GREYLIST_RETRY: a duration of at least a second", () => {
    assert.equal(load({ RELAY_GREYLIST_RETRY: "90s" }).greylistRetry, 90_000);
    for (const bad of ["0", "500ms", "soon"]) {
      assert.ok(problemsOf({ RELAY_GREYLIST_RETRY: bad })[0]!.startsWith("RELAY_GREYLIST_RETRY: expected a duration"));
    }
  });

  it("reads RELAY_MAX_QUEUE_TIME", () => {
    assert.equal(load({ RELAY_MAX_QUEUE_TIME: "12h" }).maxQueueTime, 12 * 3_600_000);
  });

  it("reads RELAY_RETENTION: 30 days by default, off with 0 or off", () => {
    assert.equal(load({}).retention, 30 * 86_400_000);
    assert.equal(load({ RELAY_RETENTION: "7d" }).retention, 7 * 86_400_000);
    assert.equal(load({ RELAY_RETENTION: "off" }).retention, 0);
    assert.equal(load({ RELAY_RETENTION: "0" }).retention, 0);
    assert.ok(problemsOf({ RELAY_RETENTION: "soon" })[0]!.startsWith("RELAY_RETENTION: "));
  });
});
