/**
 * scripts/attack: legitimate mail under a flood of abusive connections
 * (scripts/attack-run.ts).
 *
 *   scripts/attack                                   500 connections, 2000 messages per measurement
 *   scripts/attack --connections 1000 --messages 5000 --seed 7 --json .bench/attack.json
 *
 * Exit 1 when an acknowledged message went missing, the relay died, or the
 * legitimate rate under attack fell below half the rate without it.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ABUSE_KINDS, type AbuseKind } from "./attack-abusers.ts";
import { ATTACK_DEFAULTS, formatAttackReport, runAttack } from "./attack-run.ts";

const HELP = `usage: scripts/attack [--connections N] [--messages N] [--concurrency N] [--http-share F]
                      [--per-address N] [--max-connections N] [--max-connections-per-ip N]
                      [--attack-seconds N] [--kinds slowloris,hold,garbage,oversized,auth] [--seed S] [--binary dist/relay] [--json FILE]
  --connections   abusive connections at once, a fifth each slowloris, hold, garbage, oversized, AUTH guessing (default ${ATTACK_DEFAULTS.connections})
  --messages      legitimate messages per measurement, without and under attack (default ${ATTACK_DEFAULTS.messages})
  --concurrency   legitimate submissions in flight (default ${ATTACK_DEFAULTS.concurrency})
  --http-share    the share of them over the HTTP API; the rest is SMTP from RELAY_RELAY_NETWORKS (default ${ATTACK_DEFAULTS.httpShare})
  --per-address   abusive connections per source address in 127/8 (default ${ATTACK_DEFAULTS.connectionsPerAddress})
  --max-connections, --max-connections-per-ip   the relay's RELAY_MAX_CONNECTIONS(_PER_IP) (default ${ATTACK_DEFAULTS.maxConnections}, ${ATTACK_DEFAULTS.maxConnectionsPerIp})
  --attack-seconds  the attack lasts at least this long (default ${ATTACK_DEFAULTS.attackMs / 1000})
  --kinds         only these kinds of abuse (default: all, taking turns)
  --seed          the random choices (garbage bytes, the HTTP share); default: the time
  --json          write the report there too`;

// Unknown options are passed over, as before: strict off.
const { values } = parseArgs({
  strict: false,
  options: {
    "connections": { type: "string" },
    "messages": { type: "string" },
    "concurrency": { type: "string" },
    "http-share": { type: "string" },
    "per-address": { type: "string" },
    "max-connections": { type: "string" },
    "max-connections-per-ip": { type: "string" },
    "attack-seconds": { type: "string" },
    "kinds": { type: "string" },
    "seed": { type: "string" },
    "binary": { type: "string" },
    "json": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const option = (name: string) => {
  const value = values[name.slice(2)];
  return typeof value === "string" ? value : undefined;
};
const number = (name: string, fallback: number) => {
  const text = option(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    console.error(`attack: ${name} is a number, not ${text}\n${HELP}`);
    process.exit(2);
  }
  return value;
};
const kinds = option("--kinds")?.split(",") as AbuseKind[] | undefined;
const unknown = kinds?.filter((k) => !ABUSE_KINDS.includes(k));
if (unknown && unknown.length > 0) {
  console.error(`attack: unknown kind ${unknown.join(", ")}; --kinds takes ${ABUSE_KINDS.join(",")}\n${HELP}`);
  process.exit(2);
}
const root = resolve(import.meta.dirname, "..");
const report = await runAttack({
  ...ATTACK_DEFAULTS,
  binary: resolve(option("--binary") ?? join(root, "dist", "relay")),
  connections: number("--connections", ATTACK_DEFAULTS.connections),
  messages: number("--messages", ATTACK_DEFAULTS.messages),
  concurrency: number("--concurrency", ATTACK_DEFAULTS.concurrency),
  httpShare: number("--http-share", ATTACK_DEFAULTS.httpShare),
  connectionsPerAddress: Math.max(1, number("--per-address", ATTACK_DEFAULTS.connectionsPerAddress)),
  maxConnections: number("--max-connections", ATTACK_DEFAULTS.maxConnections),
  maxConnectionsPerIp: number("--max-connections-per-ip", ATTACK_DEFAULTS.maxConnectionsPerIp),
  attackMs: 1000 * number("--attack-seconds", ATTACK_DEFAULTS.attackMs / 1000),
  kinds,
  seed: number("--seed", Date.now() % 1_000_000),
  log: (line) => console.error(line),
});
console.log(formatAttackReport(report));
const json = option("--json");
if (json) writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
const missing = [report.unattacked, report.attacked, report.unattackedAfter].some((f) => f.missing.length > 0);
const failed = missing || !report.alive || report.ratio < 0.5;
process.exit(failed ? 1 : 0);
