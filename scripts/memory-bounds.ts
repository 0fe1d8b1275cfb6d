/**
 * Memory under load (issue 19), measured on the built relay from outside:
 *
 *   scripts/memory-bounds submit [--count 200] [--size 26214400] [--via smtp|http]
 *     `count` concurrent submissions of `size` octets each, generated on the
 *     fly, delivered to Postfix's smtp-sink; reports the relay's peak
 *     resident memory (VmHWM) and how many were acknowledged and delivered.
 *   scripts/memory-bounds queue [--count 2000] [--size 10485760]
 *     `count` messages held deferred (the destination answers 451 to every
 *     recipient), then the relay's resident memory with that queue.
 *
 * The relay is dist/relay (npm run build); its data directory is a fresh
 * temporary one, removed at the end (--keep to keep it).
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { startDestination } from "../test/fixtures/smtp-destination.ts";
import { processMemory, sendBigMail, sendNumberedBigMails } from "../test/helpers/big-mail.ts";
import { parseMetrics, sumOf } from "../test/helpers/metrics.ts";
import { freePort, type RelayProcess, repoRoot, startRelay } from "../test/helpers/relay-process.ts";
import { waitUntil } from "../test/helpers/wait-until.ts";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    count: { type: "string" },
    size: { type: "string" },
    via: { type: "string", default: "smtp" },
    keep: { type: "boolean", default: false },
    /** submit: "down" routes to a closed port, so that only receiving is measured (deliveries are deferred). */
    destination: { type: "string", default: "sink" },
    env: { type: "string", multiple: true, default: [] },
  },
});
const mode = positionals[0];
if (mode !== "submit" && mode !== "queue") {
  console.error("usage: scripts/memory-bounds submit|queue [--count N] [--size BYTES] [--via smtp|http] [--env K=V]");
  process.exit(2);
}
const MIB = 1024 * 1024;
const count = Number(values.count ?? (mode === "submit" ? 200 : 2000));
const size = Number(values.size ?? (mode === "submit" ? 25 * MIB : 10 * MIB));
const extraEnv = Object.fromEntries(values.env.map((kv) => kv.split(/=(.*)/s).slice(0, 2) as [string, string]));
const binary = `${repoRoot}/dist/relay`;

/** Sample the relay's memory until stopped; the peak is the kernel's own (VmHWM). */
function sampler(relay: RelayProcess) {
  let maxRss = 0;
  const timer = setInterval(() => {
    if (relay.running) maxRss = Math.max(maxRss, processMemory(relay.pid).rss);
  }, 200);
  return {
    stop: () => {
      clearInterval(timer);
      return { ...processMemory(relay.pid), maxRss };
    },
  };
}

/** Recipients delivered so far, as the relay counts them (relay_events_total{type="delivered"}). */
async function deliveredCount(relay: RelayProcess): Promise<number> {
  const response = await fetch(relay.url("/metrics"), { headers: { authorization: `Bearer ${relay.adminToken}` } });
  return sumOf(await parseMetrics(await response.text()), "relay_events_total", { type: "delivered" });
}

const sinkPort = await freePort();
const mib = (n: number) => `${(n / MIB).toFixed(0)} MiB`;

if (mode === "submit") {
  const sink = spawn("smtp-sink", ["-u", "nobody", "-c", `127.0.0.1:${sinkPort}`, "1024"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  sink.stdout!.resume();
  await new Promise((ok) => setTimeout(ok, 300));
  const relay = await startRelay({
    binary,
    env: {
      RELAY_ROUTES: `*=127.0.0.1:${values.destination === "down" ? await freePort() : sinkPort}`,
      RELAY_LOG_LEVEL: "warn",
      RELAY_RETRY_SCHEDULE: "1h",
      ...extraEnv,
    },
  });
  try {
    const idle = processMemory(relay.pid);
    const memory = sampler(relay);
    const started = Date.now();
    // Each sender tries again after a 4xx, as a client MTA's queue would (sooner: a second later).
    let retried = 0;
    const firstTry: string[] = [];
    const replies = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        for (let attempt = 1;; attempt++) {
          const reply = await sendBigMail(relay.smtpPort, {
            from: "memory@sender.test",
            to: [`to${i}@dest.test`],
            subject: `big ${i}`,
            size,
          }).catch((error: Error) => `(error) ${error.message}`);
          if (attempt === 1) firstTry.push(reply);
          if (!reply.startsWith("4") || attempt === 10) return reply;
          retried++;
          await new Promise((ok) => setTimeout(ok, 1_000));
        }
      }),
    );
    const acked = replies.filter((r) => r.startsWith("250 ")).length;
    const acceptedIn = (Date.now() - started) / 1000;
    const done = values.destination === "down" ? 0 : await waitUntil(() => deliveredCount(relay), (n) => n >= acked, {
      what: `${acked} deliveries`,
      timeout: 30 * 60_000,
      every: 500,
    });
    const { peak, maxRss } = memory.stop();
    const others = [...new Set(replies.filter((r) => !r.startsWith("250 ")))];
    console.log(JSON.stringify(
      {
        mode,
        count,
        size,
        acknowledgedAtFirstTry: firstTry.filter((r) => r.startsWith("250 ")).length,
        triedAgain: retried,
        acknowledged: acked,
        delivered: done,
        refusals: others.slice(0, 5),
        acceptedInSeconds: acceptedIn,
        totalSeconds: (Date.now() - started) / 1000,
        idleRss: mib(idle.rss),
        peakRss: mib(peak),
        sampledMaxRss: mib(maxRss),
      },
      null,
      2,
    ));
  } finally {
    await relay.stop().catch(() => relay.kill9());
    if (!values.keep) rmSync(relay.dataDir, { recursive: true, force: true });
    sink.kill("SIGTERM");
  }
} else {
  // Every recipient deferred at RCPT: the message stays queued and its body is never sent.
  const destination = await startDestination({ port: sinkPort, rcptReply: () => "451 4.3.0 try again later" });
  const relay = await startRelay({
    binary,
    env: { RELAY_ROUTES: `*=127.0.0.1:${sinkPort}`, RELAY_LOG_LEVEL: "warn", RELAY_RETRY_SCHEDULE: "1h", ...extraEnv },
  });
  try {
    const started = Date.now();
    let acked = 0;
    let queued = 0;
    /** Queue messages up to `to` over 8 sessions, let each be tried once and deferred, then the memory. */
    const fillTo = async (to: number) => {
      const replies = await sendNumberedBigMails(relay.smtpPort, { first: queued, end: to, sessions: 8, size });
      queued = to;
      acked += replies.filter((reply) => reply.startsWith("250 ")).length;
      await new Promise((ok) => setTimeout(ok, 10_000));
      return processMemory(relay.pid);
    };
    const tenth = await fillTo(Math.ceil(count / 10));
    console.error(`${Math.ceil(count / 10)} queued and deferred: RSS ${mib(tenth.rss)}`);
    const all = await fillTo(count);
    console.log(JSON.stringify(
      {
        mode,
        count,
        size,
        acknowledged: acked,
        filledInSeconds: (Date.now() - started) / 1000,
        [`rssWith${Math.ceil(count / 10)}`]: mib(tenth.rss),
        [`rssWith${count}`]: mib(all.rss),
        peakRss: mib(all.peak),
        destinationSessions: destination.sessions.length,
      },
      null,
      2,
    ));
  } finally {
    await relay.stop().catch(() => relay.kill9());
    if (!values.keep) rmSync(relay.dataDir, { recursive: true, force: true });
    await destination.close();
  }
}
