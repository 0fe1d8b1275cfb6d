import type { InStatement } from "@libsql/client";
import type { Database } from "./database.ts";
import { insertRows } from "./raw-insert.ts";

/** Sessions counted for one report period, policy domain, policy and outcome (see tls_report_counts). */
export interface TlsCountRow {
  readonly periodStart: number;
  readonly periodEnd: number;
  readonly policyDomain: string;
  readonly policyType: string;
  /** JSON array text, or "". */
  readonly policyString: string;
  /** JSON array text, or "". */
  readonly mxHost: string;
  /** "" for successful sessions. */
  readonly resultType: string;
  readonly sendingIp: string;
  readonly receivingMx: string;
  readonly receivingIp: string;
  readonly reasonCode: string;
  readonly sessions: number;
}

/** One policy domain's report period. */
export interface TlsReportPeriod {
  readonly policyDomain: string;
  readonly periodStart: number;
  readonly periodEnd: number;
}

/** A report made for a period, to be delivered to each of `ruas`. */
export interface NewTlsReport extends TlsReportPeriod {
  readonly reportId: string;
  /** The gzip-compressed JSON (RFC 8460 5.2). */
  readonly report: Uint8Array;
  readonly ruas: readonly string[];
}

/** A report owed to one destination. */
export interface TlsReportDelivery extends TlsReportPeriod {
  readonly rua: string;
  readonly reportId: string;
  readonly report: Uint8Array;
  readonly attempts: number;
  readonly createdAt: number;
}

const COUNT_KEY = [
  "period_start",
  "period_end",
  "policy_domain",
  "policy_type",
  "policy_string",
  "mx_host",
  "result_type",
  "sending_ip",
  "receiving_mx",
  "receiving_ip",
  "reason_code",
];
const COUNT_COLUMNS = [...COUNT_KEY, "sessions"];
const REPORT_COLUMNS = [
  "policy_domain",
  "period_start",
  "period_end",
  "rua",
  "report_id",
  "report",
  "state",
  "next_attempt_at",
  "created_at",
];

/** TLS reporting (RFC 8460) tables: session counts and the reports made of them. */
export class TlsReportStore {
  constructor(private readonly database: Database) {}

  /** Add sessions to the counts, in one transaction. */
  async addCounts(rows: readonly TlsCountRow[]): Promise<void> {
    if (rows.length === 0) return;
    const values = rows.map((r) => [
      r.periodStart,
      r.periodEnd,
      r.policyDomain,
      r.policyType,
      r.policyString,
      r.mxHost,
      r.resultType,
      r.sendingIp,
      r.receivingMx,
      r.receivingIp,
      r.reasonCode,
      r.sessions,
    ]);
    const upsert = ` ON CONFLICT (${COUNT_KEY.join(", ")}) DO UPDATE SET sessions = sessions + excluded.sessions`;
    await this.database.client.batch(insertRows("tls_report_counts", COUNT_COLUMNS, values, upsert), "write");
  }

  /** Policy domains and periods with counts whose period ended by `now`, oldest first. */
  async endedPeriods(now: number, limit: number): Promise<TlsReportPeriod[]> {
    const result = await this.database.client.execute({
      sql: `SELECT DISTINCT policy_domain, period_start, period_end FROM tls_report_counts
            WHERE period_end <= ? ORDER BY period_end, policy_domain LIMIT ?`,
      args: [now, limit],
    });
    return result.rows.map((r) => ({
      policyDomain: String(r.policy_domain),
      periodStart: Number(r.period_start),
      periodEnd: Number(r.period_end),
    }));
  }

  async counts(period: TlsReportPeriod): Promise<TlsCountRow[]> {
    const result = await this.database.client.execute({
      sql: `SELECT ${
        COUNT_COLUMNS.join(", ")
      } FROM tls_report_counts WHERE policy_domain = ? AND period_start = ? AND period_end = ?`,
      args: [period.policyDomain, period.periodStart, period.periodEnd],
    });
    return result.rows.map((r) => ({
      periodStart: Number(r.period_start),
      periodEnd: Number(r.period_end),
      policyDomain: String(r.policy_domain),
      policyType: String(r.policy_type),
      policyString: String(r.policy_string),
      mxHost: String(r.mx_host),
      resultType: String(r.result_type),
      sendingIp: String(r.sending_ip),
      receivingMx: String(r.receiving_mx),
      receivingIp: String(r.receiving_ip),
      reasonCode: String(r.reason_code),
      sessions: Number(r.sessions),
    }));
  }

  /**
   * A period's counts become its report, in one transaction: the report (one
   * row per destination) is stored and the counts deleted, so a period is
   * reported once, across restarts too. Without a report (the domain asks
   * for none) the counts are only deleted. A report already made for the
   * period is kept as it is. Its first delivery is due at `dueAt`.
   */
  async settlePeriod(
    period: TlsReportPeriod,
    report: NewTlsReport | undefined,
    now: number,
    dueAt = now,
  ): Promise<void> {
    const statements: InStatement[] = [];
    if (report && report.ruas.length > 0) {
      const rows = report.ruas.map((rua) => [
        period.policyDomain,
        period.periodStart,
        period.periodEnd,
        rua,
        report.reportId,
        report.report,
        "pending",
        dueAt,
        now,
      ]);
      statements.push(...insertRows("tls_reports", REPORT_COLUMNS, rows, " ON CONFLICT DO NOTHING"));
    }
    statements.push({
      sql: "DELETE FROM tls_report_counts WHERE policy_domain = ? AND period_start = ? AND period_end = ?",
      args: [period.policyDomain, period.periodStart, period.periodEnd],
    });
    await this.database.client.batch(statements, "write");
  }

  /** Reports waiting for delivery whose next attempt is due, oldest first. */
  async dueDeliveries(now: number, limit: number): Promise<TlsReportDelivery[]> {
    const result = await this.database.client.execute({
      sql:
        `SELECT policy_domain, period_start, period_end, rua, report_id, report, attempts, created_at FROM tls_reports
            WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`,
      args: [now, limit],
    });
    return result.rows.map((r) => {
      const report = r.report as ArrayBuffer | Uint8Array;
      return {
        policyDomain: String(r.policy_domain),
        periodStart: Number(r.period_start),
        periodEnd: Number(r.period_end),
        rua: String(r.rua),
        reportId: String(r.report_id),
        report: report instanceof Uint8Array ? report : new Uint8Array(report),
        attempts: Number(r.attempts),
        createdAt: Number(r.created_at),
      };
    });
  }

  async markSent(delivery: TlsReportDelivery, now: number): Promise<void> {
    await this.database.client.execute({
      sql: `UPDATE tls_reports SET state = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL
            WHERE policy_domain = ? AND period_start = ? AND rua = ?`,
      args: [now, delivery.policyDomain, delivery.periodStart, delivery.rua],
    });
  }

  /** Reports done with (sent or given up) whose period ended before `before`; returns how many. */
  async pruneReports(before: number): Promise<number> {
    const result = await this.database.client.execute({
      sql: "DELETE FROM tls_reports WHERE state IN ('sent', 'failed') AND period_end < ?",
      args: [before],
    });
    return result.rowsAffected;
  }

  /** A failed attempt: tried again at `retryAt`, or, without one, given up. */
  async markFailed(delivery: TlsReportDelivery, error: string, retryAt: number | undefined): Promise<void> {
    await this.database.client.execute({
      sql:
        `UPDATE tls_reports SET state = ?, attempts = attempts + 1, next_attempt_at = COALESCE(?, next_attempt_at), last_error = ?
            WHERE policy_domain = ? AND period_start = ? AND rua = ?`,
      args: [
        retryAt === undefined ? "failed" : "pending",
        retryAt ?? null,
        error,
        delivery.policyDomain,
        delivery.periodStart,
        delivery.rua,
      ],
    });
  }
}
