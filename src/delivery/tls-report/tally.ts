import type { Clock } from "../../core/clock.ts";
import type { TlsCountRow } from "../../queue/tls-reports.ts";
import type { ReportPolicy } from "./policy.ts";
import type { TlsSession } from "./session.ts";

/** Longest failure-reason-code kept. */
const MAX_REASON = 200;

type CountingRow = { -readonly [K in keyof TlsCountRow]: TlsCountRow[K] };

/**
 * Session counts in memory, by report period, policy domain, policy and
 * outcome: counting a session is a map update, and the report job writes the
 * counts to the database now and then (`take`). Counts not yet taken are
 * lost when the process is killed; that is at most one flush interval of
 * them, which a report, a statistic, can bear.
 */
export class TlsTally {
  readonly #rows = new Map<string, CountingRow>();

  constructor(
    private readonly clock: Clock,
    /** The report period (RFC 8460 4.1: one day). */
    private readonly periodMs: number,
  ) {}

  get size(): number {
    return this.#rows.size;
  }

  /**
   * Count sessions for a policy domain. Periods are whole multiples of the
   * period since the epoch, so a day runs 00:00-24:00 UTC (RFC 8460 4.1).
   * Successful sessions are counted without their hosts: a report lists the
   * hosts of failures only (RFC 8460 4.4).
   */
  add(policyDomain: string, policy: ReportPolicy, sessions: readonly TlsSession[]): void {
    const periodStart = Math.floor(this.clock.now() / this.periodMs) * this.periodMs;
    const base = {
      periodStart,
      periodEnd: periodStart + this.periodMs,
      policyDomain,
      policyType: policy.type,
      policyString: "policyString" in policy ? JSON.stringify(policy.policyString) : "",
      mxHost: "mxHost" in policy ? JSON.stringify(policy.mxHost) : "",
    };
    for (const session of sessions) {
      // A policy that could not be had fails every session (RFC 8460 4.3.2.2).
      const failure = "failure" in policy ? policy.failure : session.failure;
      this.#count({
        ...base,
        resultType: failure?.resultType ?? "",
        sendingIp: failure ? (session.sendingIp ?? "") : "",
        receivingMx: failure ? session.mxHost : "",
        receivingIp: failure ? (session.receivingIp ?? "") : "",
        reasonCode: (failure?.reasonCode ?? "").slice(0, MAX_REASON),
        sessions: 1,
      });
    }
  }

  /** Everything counted since the last take, and a fresh start. */
  take(): TlsCountRow[] {
    const rows = [...this.#rows.values()];
    this.#rows.clear();
    return rows;
  }

  /** Put rows back (a flush that failed): they are written with the next one. */
  restore(rows: readonly TlsCountRow[]): void {
    for (const row of rows) this.#count({ ...row });
  }

  #count(row: CountingRow): void {
    const key = JSON.stringify([
      row.periodStart,
      row.periodEnd,
      row.policyDomain,
      row.policyType,
      row.policyString,
      row.mxHost,
      row.resultType,
      row.sendingIp,
      row.receivingMx,
      row.receivingIp,
      row.reasonCode,
    ]);
    const existing = this.#rows.get(key);
    if (existing) existing.sessions += row.sessions;
    else this.#rows.set(key, row);
  }
}
