/**
 * The aggregate report (RFC 8460 4.4) of one policy domain for one period,
 * from its session counts; a pure function.
 */
import type { TlsCountRow } from "../../queue/tls-reports.ts";

export interface TlsReportJson {
  readonly "organization-name": string;
  readonly "date-range": { readonly "start-datetime": string; readonly "end-datetime": string };
  readonly "contact-info": string;
  readonly "report-id": string;
  readonly policies: readonly TlsReportPolicyJson[];
}

export interface TlsReportPolicyJson {
  readonly policy: {
    readonly "policy-type": string;
    readonly "policy-string"?: readonly string[];
    readonly "policy-domain": string;
    readonly "mx-host"?: readonly string[];
  };
  readonly summary: {
    readonly "total-successful-session-count": number;
    readonly "total-failure-session-count": number;
  };
  readonly "failure-details"?: readonly TlsFailureDetailsJson[];
}

export interface TlsFailureDetailsJson {
  readonly "result-type": string;
  readonly "sending-mta-ip"?: string;
  readonly "receiving-mx-hostname"?: string;
  readonly "receiving-ip"?: string;
  readonly "failed-session-count": number;
  readonly "failure-reason-code"?: string;
}

export interface ReportInput {
  readonly organizationName: string;
  readonly contactInfo: string;
  readonly reportId: string;
  readonly policyDomain: string;
  readonly periodStart: number;
  readonly periodEnd: number;
  /** The counts of this domain and period. */
  readonly rows: readonly TlsCountRow[];
}

/** RFC 3339 date-time in UTC, without fractional seconds when there are none. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, "Z");
}

/**
 * One "policies" entry per policy applied during the period (a policy that
 * changed gives two), each with its summary (RFC 8460 4.2) and the failed
 * sessions grouped by result type and hosts (RFC 8460 4.4 failure-details).
 * Optional fields with nothing to say are left out.
 */
export function buildReport(input: ReportInput): TlsReportJson {
  const byPolicy = new Map<string, TlsCountRow[]>();
  for (const row of input.rows) {
    const key = JSON.stringify([row.policyType, row.policyString, row.mxHost]);
    byPolicy.set(key, [...(byPolicy.get(key) ?? []), row]);
  }
  const policies = [...byPolicy.values()].map((rows): TlsReportPolicyJson => {
    const { policyType, policyString, mxHost } = rows[0]!;
    const failed = rows.filter((r) => r.resultType !== "").sort(byDetail);
    const sum = (list: readonly TlsCountRow[]) => list.reduce((total, r) => total + r.sessions, 0);
    return {
      policy: {
        "policy-type": policyType,
        ...(policyString === "" ? {} : { "policy-string": JSON.parse(policyString) as string[] }),
        "policy-domain": input.policyDomain,
        ...(mxHost === "" ? {} : { "mx-host": JSON.parse(mxHost) as string[] }),
      },
      summary: {
        "total-successful-session-count": sum(rows.filter((r) => r.resultType === "")),
        "total-failure-session-count": sum(failed),
      },
      ...(failed.length === 0 ? {} : { "failure-details": failed.map(details) }),
    };
  });
  return {
    "organization-name": input.organizationName,
    "date-range": { "start-datetime": rfc3339(input.periodStart), "end-datetime": rfc3339(input.periodEnd) },
    "contact-info": input.contactInfo,
    "report-id": input.reportId,
    policies,
  };
}

function details(row: TlsCountRow): TlsFailureDetailsJson {
  return {
    "result-type": row.resultType,
    ...(row.sendingIp === "" ? {} : { "sending-mta-ip": row.sendingIp }),
    ...(row.receivingMx === "" ? {} : { "receiving-mx-hostname": row.receivingMx }),
    ...(row.receivingIp === "" ? {} : { "receiving-ip": row.receivingIp }),
    "failed-session-count": row.sessions,
    ...(row.reasonCode === "" ? {} : { "failure-reason-code": row.reasonCode }),
  };
}

function byDetail(a: TlsCountRow, b: TlsCountRow): number {
  const key = (r: TlsCountRow) => [r.resultType, r.receivingMx, r.receivingIp, r.sendingIp, r.reasonCode].join("\0");
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}

/**
 * The report's file name (RFC 8460 5.1): sender "!" policy-domain "!"
 * begin-timestamp "!" end-timestamp "." extension, timestamps in seconds
 * since the epoch; "json.gz" for a compressed report.
 */
export function reportFilename(
  submitter: string,
  policyDomain: string,
  periodStart: number,
  periodEnd: number,
): string {
  return `${submitter}!${policyDomain}!${Math.floor(periodStart / 1000)}!${Math.floor(periodEnd / 1000)}.json.gz`;
}
