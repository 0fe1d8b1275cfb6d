/**
 * scripts/crash: crash testing of the built relay (scripts/crash-run.ts).
 *
 *   scripts/crash                          50 kills at 200 messages/s
 *   scripts/crash --kills 500 --fault destination
 *   scripts/crash --fault dns --seed 7 --json .bench/crash.json
 *
 * Exit 1 when an acknowledged message was lost or a DSN never came.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CRASH_DEFAULTS, type Fault, formatCrashReport, runCrash } from "./crash-run.ts";

const HELP = `usage: scripts/crash [--system relay|postfix] [--kills N] [--rate R] [--http-share F]
                     [--fault none|destination|dns] [--seed S]
                     [--binary dist/relay] [--json FILE] [--explain]
  --system  relay (dist/relay), or Postfix in the same harness (its own config under /tmp, as scripts/bench runs it)
  --http-share  the share submitted over HTTP (relay only; default 0.2; 0 to compare with Postfix)
  --kills   SIGKILLs of the relay under load, each followed by a restart (default 50)
  --rate    messages offered per second, SMTP (80%) and HTTP (20%) (default ${CRASH_DEFAULTS.rate})
  --fault   meanwhile (dns: the relay only; Postfix relays to the sink by address), stop and start the destination, or make DNS answer SERVFAIL, for seconds at a time
  --seed    the random schedule (kill moments, bounces, faults); default: the time
  --json    write the report there too
  --explain log each duplicate: how long before the next kill its first copy arrived`;

// Unknown options are passed over, as before: strict off.
const { values } = parseArgs({
  strict: false,
  options: {
    "system": { type: "string" },
    "kills": { type: "string" },
    "rate": { type: "string" },
    "http-share": { type: "string" },
    "fault": { type: "string" },
    "seed": { type: "string" },
    "binary": { type: "string" },
    "json": { type: "string" },
    "explain": { type: "boolean" },
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
const fault = (option("--fault") ?? "none") as Fault;
if (!["none", "destination", "dns"].includes(fault)) {
  console.error(`crash: --fault is none, destination or dns, not ${fault}\n${HELP}`);
  process.exit(2);
}
const system = option("--system") ?? "relay";
if (system !== "relay" && system !== "postfix") {
  console.error(`crash: --system is relay or postfix, not ${system}\n${HELP}`);
  process.exit(2);
}
const root = resolve(import.meta.dirname, "..");
const report = await runCrash({
  ...CRASH_DEFAULTS,
  binary: resolve(option("--binary") ?? join(root, "dist", "relay")),
  system,
  httpShare: Number(option("--http-share") ?? CRASH_DEFAULTS.httpShare),
  kills: Number(option("--kills") ?? 50),
  rate: Number(option("--rate") ?? CRASH_DEFAULTS.rate),
  fault,
  seed: Number(option("--seed") ?? Date.now() % 1_000_000),
  log: (line) => console.error(line),
  explain: values.explain === true,
});
console.log(formatCrashReport(report));
if (report.lost.length > 0) console.log(`lost: ${report.lost.slice(0, 20).join(", ")}`);
if (report.dsnsMissing.length > 0) console.log(`DSNs missing: ${report.dsnsMissing.slice(0, 20).join(", ")}`);
const json = option("--json");
if (json) writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
process.exit(report.lost.length > 0 || report.dsnsMissing.length > 0 ? 1 : 0);
