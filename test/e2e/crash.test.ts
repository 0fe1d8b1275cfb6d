/**
 * Crash testing in CI (scripts/crash-run.ts): the built relay under SMTP and
 * HTTP load, SIGKILLed 50 times at random moments and restarted, then again
 * with the destination and the DNS server failing meanwhile. Every message
 * acknowledged with 250 or 202 arrives, and every DSN owed; duplicates are
 * counted and reported (docs/reliability.md compares them with Postfix's).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CRASH_DEFAULTS, type Fault, formatCrashReport, runCrash } from "../../scripts/crash-run.ts";
import { testBinary } from "../helpers/relay-process.ts";

const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);

async function crashRun(kills: number, fault: Fault) {
  const report = await runCrash({
    ...CRASH_DEFAULTS,
    binary: testBinary!,
    kills,
    rate: 100,
    fault,
    seed,
    settleMs: 120_000,
  });
  console.log(`crash test: ${formatCrashReport(report)} (CRASH_SEED=${seed})`);
  assert.ok(report.acknowledged > kills, formatCrashReport(report));
  assert.deepEqual(report.lost, [], `acknowledged and lost (CRASH_SEED=${seed})`);
  assert.deepEqual(report.dsnsMissing, [], `bounced without a DSN (CRASH_SEED=${seed})`);
}

describe("kill -9 under load, again and again", {
  skip: testBinary ? undefined : "needs the built relay (npm test builds it)",
}, () => {
  it("50 kills: nothing acknowledged is lost", { timeout: 600_000 }, () => crashRun(50, "none"));
  it("10 kills while the destination stops and starts", { timeout: 300_000 }, () => crashRun(10, "destination"));
  it("10 kills while DNS answers SERVFAIL now and then", { timeout: 300_000 }, () => crashRun(10, "dns"));
});
