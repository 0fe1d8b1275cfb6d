/**
 * Attack testing: does legitimate mail still flow while hundreds of abusive
 * connections hit the built relay? (issue 19: "under attack, mail still flows")
 *
 * The relay runs on loopback with a DNS fixture and a destination sink. The
 * legitimate rate is measured twice for the same amount of mail: SMTP from
 * inside RELAY_RELAY_NETWORKS and the HTTP API, each message counted only
 * once it was acknowledged AND arrived at the sink; first with no attack,
 * then while `connections` abusive clients (scripts/attack-abusers.ts) run
 * from loopback addresses outside the relay networks. Then, with the attack
 * still on, the per-address limit and the AUTH throttle are probed from
 * fresh addresses, and the relay must still answer at the end.
 *
 * Used by scripts/attack (the command line) and test/e2e/attack.test.ts (a
 * CI-sized run). Everything talks to loopback only; every loop is bounded.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsServer, startDnsServer } from "../test/fixtures/dns-server.ts";
import { type Destination, startDestination } from "../test/fixtures/smtp-destination.ts";
import { prng } from "../test/helpers/prng.ts";
import { freePorts, type RelayProcess, runRelay, startRelay } from "../test/helpers/relay-process.ts";
import { sendMail, SmtpTalk } from "../test/helpers/smtp-talk.ts";
import { defaultZone } from "../test/helpers/world.ts";
import { abuse, ABUSE_KINDS, type AbuseKind, type AbuseTally, type AuthTally, newTally } from "./attack-abusers.ts";

export interface AttackOptions {
  /** The relay binary (dist/relay). */
  readonly binary: string;
  /** Abusive connections open at once, spread evenly over the kinds. */
  readonly connections: number;
  /** Legitimate messages per measurement (one without attack, one under it). */
  readonly messages: number;
  /** Legitimate submissions in flight at once. */
  readonly concurrency: number;
  /** The share of legitimate messages submitted over the HTTP API; the rest over SMTP from the relay networks. */
  readonly httpShare: number;
  /** The kinds of abuse, taking turns (default: all of them). */
  readonly kinds?: readonly AbuseKind[];
  /** Abusive connections from one source address. */
  readonly connectionsPerAddress: number;
  /** RELAY_MAX_CONNECTIONS and RELAY_MAX_CONNECTIONS_PER_IP of the relay under attack. */
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  /** RELAY_MAX_MESSAGE_BYTES; an oversized connection sends twice this without ending its DATA. */
  readonly maxMessageBytes: number;
  readonly seed: number;
  /** The attack lasts at least this long, so that the relay's limits on a session (errors, handshakes) show. */
  readonly attackMs: number;
  /** The longest a measurement may take before what is missing counts as not delivered. */
  readonly settleMs: number;
  readonly log?: (line: string) => void;
}

export const ATTACK_DEFAULTS = {
  connections: 500,
  messages: 2000,
  concurrency: 20,
  httpShare: 0.2,
  connectionsPerAddress: 10,
  maxConnections: 500,
  maxConnectionsPerIp: 20,
  maxMessageBytes: 1024 * 1024,
  attackMs: 20_000,
  settleMs: 60_000,
};

/** One measurement of legitimate mail. */
export interface Flow {
  readonly offered: number;
  /** Acknowledged (250 / 202) and arrived at the sink. */
  readonly delivered: number;
  readonly acknowledged: number;
  /** Acknowledged and not at the sink when the measurement ended. */
  readonly missing: readonly string[];
  /** Why the others were not acknowledged: reply or error, counted. */
  readonly refused: Record<string, number>;
  readonly seconds: number;
  /** Delivered per second, from the first submission to the last arrival. */
  readonly rate: number;
  /** CPU seconds the relay process used meanwhile, and this process (the clients, the sink, the attack). */
  readonly cpu: { readonly relay: number; readonly harness: number };
}

/** CPU seconds (user + system) process `pid` has used: /proc/PID/stat fields 14 and 15, in clock ticks (100 a second). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export interface AttackReport {
  readonly seed: number;
  readonly connections: number;
  readonly limits: { maxConnections: number; maxConnectionsPerIp: number; maxMessageBytes: number };
  /** Without attack: before it, and again once it is over (a busy machine's speed drifts). */
  readonly unattacked: Flow;
  readonly unattackedAfter: Flow;
  readonly attacked: Flow;
  /** attacked.rate over the mean of the two unattacked rates. */
  readonly ratio: number;
  readonly abuse: Record<AbuseKind, AbuseTally>;
  readonly auth: AuthTally;
  /** maxConnectionsPerIp + 5 connections from one fresh outside address: how many were greeted, and the refusals. */
  readonly perAddress: { readonly tried: number; readonly greeted: number; readonly refusals: readonly string[] };
  /**
   * The right password from a fresh outside address while the attack is on
   * (refused 421 when outsiders hold every place not kept for the relay
   * networks); then, after it, from a guessing (locked-out) address and from a fresh one.
   */
  readonly rightPassword: { readonly underAttack: string; readonly fromGuesser: string; readonly fromFresh: string };
  /** GET /readyz and an SMTP greeting after the attack stopped, and the process still running. */
  readonly alive: boolean;
  readonly seconds: number;
}

const ADMIN_TOKEN = "attack-test-admin-token-0123456789";
const USER = "legit";
const PASSWORD = "the right password, long enough";
const BOUNCE_DOMAIN = "bounces.relay.test";
/** The relay networks: only this address. Every abuser connects from elsewhere in 127/8. */
const TRUSTED = "127.0.0.1";

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));
const MARKER = /attack-([a-z]+-\d+)-end/;

/** Abusive connection `i`'s source address: one block of 127/8 per kind, `perAddress` connections each. */
function sourceAddress(kind: AbuseKind, i: number, perAddress: number): string {
  const n = Math.floor(i / perAddress);
  return `127.${10 + ABUSE_KINDS.indexOf(kind)}.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

export async function runAttack(options: AttackOptions): Promise<AttackReport> {
  const log = options.log ?? (() => undefined);
  const random = prng(options.seed);
  const started = Date.now();
  const [smtpPort, httpPort, mxPort] = (await freePorts(3)) as [number, number, number];
  const dns: DnsServer = await startDnsServer(defaultZone());
  const destination: Destination = await startDestination({ port: mxPort });
  const dataDir = mkdtempSync(join(tmpdir(), "relay-attack-"));
  const env = {
    RELAY_DNS_SERVERS: `127.0.0.1:${dns.port}`,
    RELAY_MX_PORT: String(mxPort),
    RELAY_RELAY_NETWORKS: `${TRUSTED}/32`,
    RELAY_BOUNCE_DOMAIN: BOUNCE_DOMAIN,
    RELAY_MAX_CONNECTIONS: String(options.maxConnections),
    RELAY_MAX_CONNECTIONS_PER_IP: String(options.maxConnectionsPerIp),
    RELAY_MAX_MESSAGE_BYTES: String(options.maxMessageBytes),
    RELAY_SENDER_POLICY: "any",
    RELAY_LOG_LEVEL: "error",
  };
  let relay: RelayProcess | undefined;
  try {
    const added = await runRelay(["users", "add", USER], {
      binary: options.binary,
      dataDir,
      env,
      input: `${PASSWORD}\n`,
    });
    if (added.code !== 0) throw new Error(`relay users add: exit ${added.code}\n${added.stderr}`);
    relay = await startRelay({
      binary: options.binary,
      dataDir,
      smtpPort,
      httpPort,
      adminToken: ADMIN_TOKEN,
      env,
    });
    const legit = (phase: string, messages = options.messages) =>
      measure(phase, { ...options, messages }, relay!, destination, random);
    // A first run warms the relay up (JIT, connection pools, the database's cache), so that the two measured ones compare.
    await legit("warmup", Math.min(options.messages, 500));

    log(`attack: measuring ${options.messages} legitimate messages without attack`);
    const unattacked = await legit("calm");
    log(`attack: ${formatFlow(unattacked)}`);
    // Before the attack, so that a refusal can only be the per-address limit's.
    const perAddress = await probePerAddressLimit(smtpPort, options.maxConnectionsPerIp);

    const abuseTallies = Object.fromEntries(ABUSE_KINDS.map((k) => [k, newTally()])) as Record<AbuseKind, AbuseTally>;
    const authTally: AuthTally = { checkedPerAddress: {}, lockedOut: 0, mostCheckedFromOneAddress: 0 };
    let stop = false;
    const ctx = {
      port: smtpPort,
      random,
      user: USER,
      bounceDomain: BOUNCE_DOMAIN,
      oversizedBytes: 2 * options.maxMessageBytes,
      slowByteMs: 2_000,
      stopped: () => stop,
      live: new Set<{ hangUp(): void }>(),
      // However the measurement goes, the attack ends by itself.
      deadline: Date.now() + options.attackMs + 2 * options.settleMs + 60_000,
    };
    const abusers: Promise<void>[] = [];
    const kinds = options.kinds ?? ABUSE_KINDS;
    for (let i = 0; i < options.connections; i++) {
      const kind = kinds[i % kinds.length]!;
      const n = Math.floor(i / kinds.length);
      abusers.push(
        abuse(kind, n, ctx, sourceAddress(kind, n, options.connectionsPerAddress), abuseTallies[kind], authTally),
      );
      // Open them in bursts, as a flood does, without starving this process's own event loop.
      if (i % 50 === 49) await sleep(10);
    }
    // Let the attack take hold: every connection tried at least once.
    for (let i = 0; i < 100; i++) {
      const tried = ABUSE_KINDS.reduce((sum, k) => sum + abuseTallies[k].connections, 0);
      if (tried >= options.connections) break;
      await sleep(50);
    }
    await sleep(1_000);
    const attackStarted = Date.now();
    log(`attack: ${options.connections} abusive connections on; measuring again`);
    const attacked = await legit("attacked");
    log(`attack: ${formatFlow(attacked)}`);

    const underAttack = await tryPassword(smtpPort, "127.99.2.1");
    while (Date.now() - attackStarted < options.attackMs) await sleep(100);
    stop = true;
    for (const connection of [...ctx.live]) connection.hangUp();
    await Promise.all(abusers);
    log("attack: over; measuring without attack again");
    const unattackedAfter = await legit("after");
    log(`attack: ${formatFlow(unattackedAfter)}`);
    // Within the lockout: the guessers' address stays refused, another one is not.
    const rightPassword = {
      underAttack,
      fromGuesser: await tryPassword(smtpPort, mostGuessingAddress(authTally)),
      fromFresh: await tryPassword(smtpPort, "127.99.1.1"),
    };
    const alive = await stillAlive(relay, smtpPort);
    return {
      seed: options.seed,
      connections: options.connections,
      limits: {
        maxConnections: options.maxConnections,
        maxConnectionsPerIp: options.maxConnectionsPerIp,
        maxMessageBytes: options.maxMessageBytes,
      },
      unattacked,
      unattackedAfter,
      attacked,
      ratio: unattacked.rate + unattackedAfter.rate === 0
        ? 0
        : attacked.rate / ((unattacked.rate + unattackedAfter.rate) / 2),
      abuse: abuseTallies,
      auth: authTally,
      perAddress,
      rightPassword,
      alive,
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    await relay?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
    await Promise.all([dns.close(), destination.close()]);
  }
}

/** `options.messages` legitimate messages, `concurrency` at a time; counted when acknowledged and arrived. */
async function measure(
  phase: string,
  options: AttackOptions,
  relay: RelayProcess,
  destination: Destination,
  random: () => number,
): Promise<Flow> {
  const acknowledged = new Set<string>();
  const refused: Record<string, number> = {};
  const count = (why: string) => (refused[why] = (refused[why] ?? 0) + 1);
  const started = Date.now();
  const relayCpu = cpuSeconds(relay.pid);
  const harnessCpu = process.cpuUsage();
  const sendOne = async (n: number) => {
    const id = `${phase}-${n}`;
    const to = `u${n}@dest.test`;
    const text = `From: legit@sender.test\r\nTo: ${to}\r\nSubject: attack-${id}-end\r\n` +
      `Message-ID: <attack-${id}-end@attack.test>\r\n\r\n${"x".repeat(900)}\r\n`;
    try {
      if (random() < options.httpShare) {
        const response = await fetch(relay.url("/v1/messages"), {
          method: "POST",
          headers: { authorization: `Bearer ${relay.adminToken}`, "content-type": "application/json" },
          body: JSON.stringify({ mail_from: "legit@sender.test", rcpt_to: [to], raw: text }),
          signal: AbortSignal.timeout(30_000),
        });
        await response.arrayBuffer();
        if (response.status === 202) acknowledged.add(id);
        else count(`HTTP ${response.status}`);
      } else {
        const replies = await sendMail(relay.smtpPort, "legit@sender.test", [to], text);
        const last = replies.at(-2)!;
        if (last.startsWith("250 ")) acknowledged.add(id);
        else count(last.slice(0, 9));
      }
    } catch (error) {
      count((error as Error).message.replace(/;.*$/s, "").slice(0, 60));
    }
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < options.messages) await sendOne(next++);
    }),
  );
  const arrivals = () => {
    const at = new Map<string, number>();
    for (const m of destination.messages) {
      const id = MARKER.exec(m.data)?.[1];
      if (id?.startsWith(`${phase}-`) && !at.has(id)) at.set(id, m.receivedAt);
    }
    return at;
  };
  const deadline = Date.now() + options.settleMs;
  let arrived = arrivals();
  while ([...acknowledged].some((id) => !arrived.has(id)) && Date.now() < deadline) {
    await sleep(50);
    arrived = arrivals();
  }
  const harnessUsed = process.cpuUsage(harnessCpu);
  const cpu = {
    relay: cpuSeconds(relay.pid) - relayCpu,
    harness: (harnessUsed.user + harnessUsed.system) / 1e6,
  };
  const delivered = [...acknowledged].filter((id) => arrived.has(id));
  const last = Math.max(started, ...delivered.map((id) => arrived.get(id)!));
  const seconds = (last - started) / 1000;
  return {
    offered: options.messages,
    acknowledged: acknowledged.size,
    delivered: delivered.length,
    missing: [...acknowledged].filter((id) => !arrived.has(id)),
    refused,
    seconds,
    rate: seconds > 0 ? delivered.length / seconds : 0,
    cpu,
  };
}

/** More connections from one address than the per-address limit allows, all held at once. */
async function probePerAddressLimit(port: number, limit: number) {
  const talks: SmtpTalk[] = [];
  const refusals: string[] = [];
  let greeted = 0;
  const tried = limit + 5;
  try {
    for (let i = 0; i < tried; i++) {
      try {
        const talk = await SmtpTalk.open(port, "127.0.0.1", "127.99.0.1");
        talks.push(talk);
        const greeting = await talk.reply();
        if (greeting.startsWith("220")) greeted++;
        else refusals.push(greeting);
      } catch (error) {
        refusals.push((error as Error).message);
      }
    }
  } finally {
    for (const talk of talks) talk.close();
  }
  return { tried, greeted, refusals };
}

/** The address whose wrong passwords were checked most often: the one surely locked out. */
function mostGuessingAddress(tally: AuthTally): string {
  const [address] = Object.entries(tally.checkedPerAddress).sort((a, b) => b[1] - a[1])[0] ?? ["127.14.0.1"];
  return address;
}

/** STARTTLS and AUTH PLAIN with the right password from `from`: the reply to AUTH. */
async function tryPassword(port: number, from: string): Promise<string> {
  let talk: SmtpTalk | undefined;
  try {
    talk = await SmtpTalk.open(port, "127.0.0.1", from);
    const greeting = await talk.reply();
    if (!greeting.startsWith("220")) return greeting;
    await talk.command("EHLO right.example");
    await talk.startTls();
    await talk.command("EHLO right.example");
    return await talk.command(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString("base64")}`);
  } catch (error) {
    return `(${(error as Error).message})`;
  } finally {
    talk?.close();
  }
}

async function stillAlive(relay: RelayProcess, port: number): Promise<boolean> {
  if (!relay.running) return false;
  try {
    const ready = await fetch(relay.url("/readyz"), { signal: AbortSignal.timeout(10_000) });
    await ready.arrayBuffer();
    const talk = await SmtpTalk.open(port);
    const greeting = await talk.reply();
    talk.close();
    return ready.status === 200 && greeting.startsWith("220") && relay.running;
  } catch {
    return false;
  }
}

const formatFlow = (f: Flow) =>
  `${f.delivered} of ${f.offered} acknowledged and delivered in ${f.seconds.toFixed(1)} s ` +
  `(${f.rate.toFixed(0)}/s; CPU s: relay ${f.cpu.relay.toFixed(1)}, harness ${f.cpu.harness.toFixed(1)})${
    f.missing.length > 0 ? `, ${f.missing.length} acknowledged and missing` : ""
  }` +
  `${Object.keys(f.refused).length > 0 ? `, not acknowledged: ${JSON.stringify(f.refused)}` : ""}`;

/** Lines for a person: both rates, their ratio, what the abusive connections got. */
export function formatAttackReport(r: AttackReport): string {
  const lines = [
    `attack: ${r.connections} abusive connections (seed ${r.seed}; RELAY_MAX_CONNECTIONS=${r.limits.maxConnections}, ` +
    `RELAY_MAX_CONNECTIONS_PER_IP=${r.limits.maxConnectionsPerIp})`,
    `  without attack: ${formatFlow(r.unattacked)}`,
    `  under attack:   ${formatFlow(r.attacked)}`,
    `  after it:       ${formatFlow(r.unattackedAfter)}`,
    `  ratio: ${r.ratio.toFixed(2)} (under attack / without, before and after)`,
  ];
  for (const kind of ABUSE_KINDS) {
    const t = r.abuse[kind];
    lines.push(
      `  ${kind}: ${t.connections} connections, ${t.greeted} greeted, ${t.refused} refused, ` +
        `${t.closedByRelay} closed by the relay, ${t.openAtStop} open at the end; replies ${JSON.stringify(t.replies)}`,
    );
  }
  lines.push(
    `  AUTH guessing: at most ${r.auth.mostCheckedFromOneAddress} wrong passwords checked from one address ` +
      `(${Object.keys(r.auth.checkedPerAddress).length} addresses), then ${r.auth.lockedOut} answers "locked out"`,
    `  the right password: from a fresh address under attack ${r.rightPassword.underAttack.slice(0, 40)}; ` +
      `after it from a guessing address ${r.rightPassword.fromGuesser.slice(0, 40)}; ` +
      `from a fresh one ${r.rightPassword.fromFresh.slice(0, 40)}`,
    `  ${r.perAddress.tried} connections from one address: ${r.perAddress.greeted} greeted, ` +
      `${r.perAddress.refusals.length} refused (${[...new Set(r.perAddress.refusals.map((x) => x.slice(0, 9)))]})`,
    `  relay alive at the end: ${r.alive ? "yes" : "NO"}; ${r.seconds} s`,
  );
  return lines.join("\n");
}
