/**
 * Crash testing: load through the built relay (SMTP and HTTP), SIGKILL at
 * random moments, restart on the same data directory, again and again; then
 * check at the destination sink that every acknowledged message (250 or
 * 202) arrived, and count what arrived more than once.
 *
 * Kills land at random under continuous load, so they fall during DATA,
 * during a commit, during delivery and during a DSN (a share of the
 * recipients bounce, and their DSNs go to the same sink). Faults on the
 * other side are options: the destination stopped and started again
 * (`destination`), or the DNS server answering SERVFAIL for a while (`dns`).
 *
 * Used by scripts/crash (the command line) and test/e2e/crash.test.ts (a
 * CI-sized run). Everything talks to loopback only, and every loop is bounded.
 */
import { type DnsServer, startDnsServer, type Zone } from "../test/fixtures/dns-server.ts";
import { type Destination, type Received, startDestination } from "../test/fixtures/smtp-destination.ts";
import { freePorts } from "../test/helpers/relay-process.ts";
import { postfixTarget, relayTarget } from "./crash-targets.ts";
import { sendMail } from "../test/helpers/smtp-talk.ts";
import { prng } from "../test/helpers/prng.ts";

export type Fault = "none" | "destination" | "dns";

export interface CrashOptions {
  /** What is killed: the relay, or Postfix in the same harness. */
  readonly system: "relay" | "postfix";
  /** The share of messages submitted over HTTP (the relay only). */
  readonly httpShare: number;
  /** The relay binary (dist/relay). */
  readonly binary: string;
  readonly kills: number;
  /** Messages offered per second, SMTP and HTTP together. */
  readonly rate: number;
  readonly fault: Fault;
  /** Share of messages sent to a recipient the destination refuses (550), so a DSN is made. */
  readonly bounceShare: number;
  /** Seed of the random moments and choices; the same seed, the same schedule of kills. */
  readonly seed: number;
  /** The time between kills is drawn from [min, max] ms. */
  readonly killEveryMs: readonly [number, number];
  /** How long to wait for the queue to empty at the end. */
  readonly settleMs: number;
  readonly log?: (line: string) => void;
  /** Log each duplicate: when its first copy arrived, how long before the next kill. */
  readonly explain?: boolean;
}

export interface CrashReport {
  readonly system: "relay" | "postfix";
  readonly kills: number;
  readonly fault: Fault;
  readonly seed: number;
  readonly rate: number;
  /** Messages offered, and acknowledged (250 / 202). */
  readonly offered: number;
  readonly acknowledged: number;
  /** Acknowledged messages that never arrived (the promise broken). */
  readonly lost: readonly string[];
  /** Acknowledged messages refused at the destination whose DSN never arrived. */
  readonly dsnsMissing: readonly string[];
  /** Deliveries beyond the first of a message (DSNs included). */
  readonly duplicates: number;
  readonly duplicatesPerKill: number;
  readonly seconds: number;
}

export const CRASH_DEFAULTS = {
  system: "relay" as "relay" | "postfix",
  httpShare: 0.2,
  rate: 200,
  fault: "none" as Fault,
  bounceShare: 0.05,
  killEveryMs: [300, 1500] as const,
  settleMs: 180_000,
};

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

const zone = (failing: boolean): Zone => ({
  "dest.test": failing ? { servfail: true } : { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
  "sender.test": failing ? { servfail: true } : { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
  "mx.dest.test": failing ? { servfail: true } : { A: ["127.0.0.1"] },
});

/** The marker every copy of message `id` carries, a DSN's returned header too. */
const marker = (id: string) => `crash-${id}-end`;
const MARKER = /crash-(\d+)-end/;

export async function runCrash(options: CrashOptions): Promise<CrashReport> {
  const log = options.log ?? (() => undefined);
  const random = prng(options.seed);
  const started = Date.now();
  const [smtpPort, httpPort, mxPort] = (await freePorts(3)) as [number, number, number];
  const dns: DnsServer = await startDnsServer(zone(false));
  /** Every destination instance's messages: the destination may be restarted. */
  const arrived: Received[] = [];
  let destination: Destination | undefined = await startDestination({ port: mxPort });
  const env = {
    RELAY_DNS_SERVERS: `127.0.0.1:${dns.port}`,
    RELAY_MX_PORT: String(mxPort),
    RELAY_RETRY_SCHEDULE: "1s",
    RELAY_LOG_LEVEL: "error",
    RELAY_SUPPRESS_BOUNCE_CATEGORIES: "none",
    RELAY_SENDER_POLICY: "any",
  };
  const target = options.system === "postfix"
    ? await postfixTarget(smtpPort, mxPort)
    : await relayTarget(options.binary, { smtp: smtpPort, http: httpPort }, env);

  const killedAt: number[] = [];
  const acknowledged = new Set<string>();
  const bounced = new Set<string>();
  let offered = 0;
  let loadRunning = true;
  let inFlight = 0;

  const sendOne = async (n: number) => {
    const id = String(n);
    const bounce = random() < options.bounceShare;
    const to = bounce ? "permfail@dest.test" : `u${id}@dest.test`;
    const text =
      `From: load@sender.test\r\nTo: ${to}\r\nSubject: ${marker(id)}\r\nMessage-ID: <${
        marker(id)
      }@crash.test>\r\n\r\n` +
      `${"x".repeat(900)}\r\n`;
    try {
      if (target.http && random() < options.httpShare) {
        const response = await fetch(`http://127.0.0.1:${target.http.port}/v1/messages`, {
          method: "POST",
          headers: { authorization: `Bearer ${target.http.token}`, "content-type": "application/json" },
          body: JSON.stringify({ mail_from: "load@sender.test", rcpt_to: [to], raw: text }),
          signal: AbortSignal.timeout(10_000),
        });
        await response.arrayBuffer();
        if (response.status !== 202) return;
      } else {
        const replies = await sendMail(smtpPort, "load@sender.test", [to], text);
        if (!replies.at(-2)?.startsWith("250 ")) return;
      }
      acknowledged.add(id);
      if (bounce) bounced.add(id);
    } catch {
      // Refused or cut by a kill: not acknowledged, so not owed (it may still arrive).
    }
  };

  const load = (async () => {
    const gapMs = 1000 / options.rate;
    let next = Date.now();
    while (loadRunning) {
      if (inFlight < 100) {
        inFlight++;
        void sendOne(offered++).finally(() => inFlight--);
      }
      next += gapMs;
      await sleep(Math.max(0, next - Date.now()));
    }
  })();

  const faults = (async () => {
    while (loadRunning && options.fault !== "none") {
      await sleep(1000 + random() * 3000);
      if (!loadRunning) break;
      const downMs = 500 + random() * 2500;
      if (options.fault === "dns") {
        dns.setZone(zone(true));
        await sleep(downMs);
        dns.setZone(zone(false));
      } else {
        const stopping = destination!;
        destination = undefined;
        await stopping.close(random() < 0.5 ? "reset" : "421");
        arrived.push(...stopping.messages);
        await sleep(downMs);
        destination = await startDestination({ port: mxPort });
      }
    }
  })();

  try {
    for (let kill = 1; kill <= options.kills; kill++) {
      await sleep(options.killEveryMs[0] + random() * (options.killEveryMs[1] - options.killEveryMs[0]));
      killedAt.push(Date.now());
      await target.killAndRestart();
      if (kill % 10 === 0) log(`crash: ${kill} kills, ${acknowledged.size} of ${offered} acknowledged`);
    }
  } finally {
    loadRunning = false;
    await load;
    await faults;
    while (inFlight > 0) await sleep(50);
  }

  const everything = () => [...arrived, ...(destination?.messages ?? [])];
  const copies = () => {
    const count = new Map<string, number>();
    const dsns = new Map<string, number>();
    for (const message of everything()) {
      const id = MARKER.exec(message.data)?.[1];
      if (id === undefined) continue;
      const into = message.mailFrom === "" ? dsns : count;
      into.set(id, (into.get(id) ?? 0) + 1);
    }
    return { count, dsns };
  };
  const outstanding = () => {
    const { count, dsns } = copies();
    return {
      lost: [...acknowledged].filter((id) => !bounced.has(id) && !count.has(id)),
      dsnsMissing: [...bounced].filter((id) => !dsns.has(id)),
    };
  };
  const deadline = Date.now() + options.settleMs;
  while (Date.now() < deadline) {
    const { lost, dsnsMissing } = outstanding();
    if (lost.length === 0 && dsnsMissing.length === 0) break;
    await sleep(500);
  }
  // Late copies of what was just delivered would be duplicates too: give them a moment.
  await sleep(2_000);
  const { lost, dsnsMissing } = outstanding();
  const { count, dsns } = copies();
  const extra = (m: Map<string, number>) => [...m.values()].reduce((sum, n) => sum + n - 1, 0);
  const duplicates = extra(count) + extra(dsns);
  if (options.explain) {
    const errors = target.logs().split("\n").filter((line) => /error|fail/i.test(line));
    for (const line of errors.slice(-30)) log(`log: ${line}`);
    const firsts = new Map<string, number>();
    for (const m of everything()) {
      const id = MARKER.exec(m.data)?.[1];
      if (id === undefined || m.mailFrom === "") continue;
      if (!firsts.has(id)) firsts.set(id, m.receivedAt);
      else {
        const first = firsts.get(id)!;
        const kill = killedAt.find((k) => k >= first);
        log(
          `dup ${id}: first ${first}, kill +${kill === undefined ? "none" : kill - first} ms, again +${
            m.receivedAt - first
          } ms`,
        );
        if (kill === undefined && target.http) {
          const events = await fetch(
            `http://127.0.0.1:${target.http.port}/v1/events?recipient=u${id}@dest.test&limit=20`,
            { headers: { authorization: `Bearer ${target.http.token}` } },
          ).then((r) => r.json()).catch((e) => String(e));
          log(`  events: ${JSON.stringify(events).slice(0, 1500)}`);
        }
      }
    }
  }

  await target.close();
  await Promise.all([dns.close(), destination?.close()]);
  return {
    system: target.name,
    kills: options.kills,
    fault: options.fault,
    seed: options.seed,
    rate: options.rate,
    offered,
    acknowledged: acknowledged.size,
    lost,
    dsnsMissing,
    duplicates,
    duplicatesPerKill: options.kills === 0 ? 0 : duplicates / options.kills,
    seconds: Math.round((Date.now() - started) / 1000),
  };
}

/** One line for a person: what was promised, what was kept. */
export function formatCrashReport(r: CrashReport): string {
  return `${r.system}: ${r.kills} kills (fault: ${r.fault}, seed ${r.seed}, ${r.rate}/s offered), ` +
    `${r.acknowledged} of ${r.offered} acknowledged, ${r.lost.length} lost, ${r.dsnsMissing.length} DSNs missing, ` +
    `${r.duplicates} duplicates (${r.duplicatesPerKill.toFixed(2)} per kill), ${r.seconds} s`;
}
