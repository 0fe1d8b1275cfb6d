// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import { after, before } from "node:test";
import { type DnsServer, startDnsServer, type Zone } from "../fixtures/dns-server.ts";
import { type Destination, type DestinationOptions, startDestination } from "../fixtures/smtp-destination.ts";
import { type RelayProcess, runRelay, startRelay, type StartRelayOptions } from "./relay-process.ts";
import { waitUntil } from "./wait-until.ts";

/**
 * One test world on loopback: a DNS server whose zone sends dest.test and
 * sender.test to one scripted destination SMTP server, and the relay set up
 * to use both (RELAY_DNS_SERVERS, RELAY_MX_PORT).
 */
export interface RelayApi {
  /** Authenticated JSON request to the relay's HTTP API. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  /** Events after a cursor, all of them. */
  events(): Promise<any[]>;
  /** Wait until the event log has an event matching `predicate`. */
  waitForEvent(predicate: (event: any) => boolean, timeoutMs?: number): Promise<any>;
}

export interface World extends RelayApi {
  readonly dns: DnsServer;
  readonly destination: Destination;
  readonly relay: RelayProcess;
  /**
   * Make `domain` a verified sending domain, as an operator would: `relay
   * domains add` (RSA key), every TXT and MX record it lists published in the
   * DNS fixture (on top of the zone the world started with and whatever this
   * published before), then `relay domains check`, which sees the DKIM record.
   * Under RELAY_SENDER_POLICY=verified, SMTP AUTH users and API keys may then
   * send From it. Returns the records.
   */
  verifySendingDomain(domain: string): Promise<{ name: string; type: string; value: string; purpose: string }[]>;
  /** Add TXT and MX records to the DNS fixture's zone (kept across calls). */
  publish(records: readonly { name: string; type: string; value: string }[]): void;
  close(): Promise<void>;
}

export function defaultZone(): Zone {
  return {
    "dest.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
    "sender.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
    "mx.dest.test": { A: ["127.0.0.1"] },
  };
}

export interface WorldOptions extends StartRelayOptions {
  zone?: Zone;
  destination?: DestinationOptions;
}

export async function startWorld(options: WorldOptions = {}): Promise<World> {
  const dns = await startDnsServer(options.zone ?? defaultZone());
  const destination = await startDestination(options.destination);
  let relay: RelayProcess;
  try {
    relay = await startRelay({
      ...options,
      env: {
        RELAY_DNS_SERVERS: `127.0.0.1:${dns.port}`,
        RELAY_MX_PORT: String(destination.port),
        RELAY_RETRY_SCHEDULE: "1s",
        RELAY_GREYLIST_RETRY: "1s",
        // The scripted destination's failing local parts (permfail@, nouser@) are shared by every test of a
        // world; a hard bounce suppressing them would turn the next test's bounce into a suppression.
        // test/e2e/suppressions.test.ts turns it on.
        RELAY_SUPPRESS_BOUNCE_CATEGORIES: "none",
        ...options.env,
      },
    });
  } catch (error) {
    await Promise.all([dns.close(), destination.close()]);
    throw error;
  }
  let zone: Record<string, any> = { ...(options.zone ?? defaultZone()) };
  const publish = (records: readonly { name: string; type: string; value: string }[]) => {
    zone = { ...zone };
    for (const r of records) {
      const entry = (zone[r.name] = { ...zone[r.name] });
      if (r.type === "TXT") entry.TXT = [...(entry.TXT ?? []).filter((t: unknown) => t !== r.value), r.value];
      if (r.type === "MX") {
        const [preference, exchange] = r.value.split(" ");
        entry.MX = [...(entry.MX ?? []), { preference: Number(preference), exchange }];
      }
    }
    dns.setZone(zone);
  };
  const cli = (args: string[]) =>
    runRelay(args, { dataDir: relay.dataDir, env: { RELAY_DNS_SERVERS: `127.0.0.1:${dns.port}`, ...options.env } });
  return {
    dns,
    destination,
    relay,
    ...relayApi(relay),
    publish,
    async verifySendingDomain(domain) {
      const added = await cli(["domains", "add", domain, "--json"]);
      if (added.code !== 0) throw new Error(`relay domains add ${domain}: exit ${added.code}\n${added.stderr}`);
      const records = JSON.parse(added.stdout).records;
      publish(records);
      const checked = await cli(["domains", "check", domain, "--json"]);
      const report = JSON.parse(checked.stdout);
      if (!report.records.some((r: any) => r.purpose === "dkim" && r.status === "pass")) {
        throw new Error(
          `relay domains check ${domain} did not see the DKIM record:\n${checked.stdout}\n${checked.stderr}`,
        );
      }
      return records;
    },
    async close() {
      await relay.cleanup();
      await Promise.all([dns.close(), destination.close()]);
    },
  };
}

/**
 * Call in a describe block: a world started with `options()` before its
 * tests and closed after them; the returned function gives that world.
 */
export function worldForTests(options: () => WorldOptions | Promise<WorldOptions>): () => World {
  let world: World | undefined;
  before(async () => {
    world = await startWorld(await options());
  });
  after(async () => {
    await world?.close();
  });
  return () => {
    if (!world) throw new Error("the world is used before it started");
    return world;
  };
}

export function relayApi(relay: RelayProcess): RelayApi {
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(relay.url(path), {
      method,
      headers: { authorization: `Bearer ${relay.adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  };
  const events = async () => {
    const all: any[] = [];
    let cursor = "0";
    for (;;) {
      const page = await api("GET", `/v1/events?after=${cursor}&limit=1000`);
      all.push(...page.json.events);
      if (page.json.events.length < 1000) return all;
      cursor = page.json.next;
    }
  };
  return {
    api,
    events,
    async waitForEvent(predicate, timeoutMs = 20_000) {
      const all = await waitUntil(events, (all) => all.some(predicate), {
        what: "a matching event",
        timeout: timeoutMs,
        every: 25,
      });
      return all.find(predicate);
    },
  };
}
