/**
 * The report job of TLS reporting (RFC 8460), on a timer:
 *
 * 1. the session counts kept in memory (TlsTally) are written to the
 *    database; what a kill -9 loses is what was counted since the last
 *    write, at most one tick;
 * 2. each policy domain with counts for a period that has ended gets its
 *    report: the TLSRPT record at `_smtp._tls.<domain>` is looked up with
 *    the relay's own resolver (RFC 8460 3), and the report (RFC 8460 4.4),
 *    gzip-compressed (5.2), is stored for each destination while the counts
 *    are deleted, in one transaction: a period is reported once, restarts
 *    or not. A domain without a record gets none; its counts are dropped;
 * 3. reports that are due go out: to a mailto: destination as mail through
 *    the relay's own ingress and queue (5.3), to an https: one as a POST
 *    (5.4). A failure is retried with exponential backoff for 24 hours
 *    after the report was made, then given up (5.5). A delivery and its
 *    "sent" mark are not one transaction: a crash between them sends the
 *    report again, with the same Report-ID, which is what lets the receiver
 *    drop the copy (5.3);
 * 4. once an hour, reports done with are deleted after RELAY_RETENTION.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import type { TimerClock } from "../../core/clock.ts";
import { newId } from "../../core/id.ts";
import type { Resolver } from "../../dns/resolver.ts";
import type { Logger } from "../../core/log.ts";
import type { TlsReportDelivery, TlsReportPeriod, TlsReportStore } from "../../queue/tls-reports.ts";
import { reportMail } from "./mail.ts";
import { reportDestination, selectTlsRptRecord } from "./record.ts";
import { buildReport, rfc3339, type TlsReportJson } from "./report.ts";
import type { TlsTally } from "./tally.ts";

export interface TlsReporterDeps {
  readonly store: Pick<
    TlsReportStore,
    | "addCounts"
    | "endedPeriods"
    | "counts"
    | "settlePeriod"
    | "dueDeliveries"
    | "markSent"
    | "markFailed"
    | "pruneReports"
  >;
  readonly tally: Pick<TlsTally, "take" | "restore">;
  readonly clock: TimerClock;
  readonly resolver: Pick<Resolver, "txt">;
  /** Our host name: the report's submitter, its From domain and file name (RFC 8460 5.1, 5.3). */
  readonly hostname: string;
  /** organization-name and contact-info (RFC 8460 4.4). */
  readonly organizationName: string;
  readonly contactInfo: string;
  /** The report period; a report is made once one has ended. */
  readonly periodMs: number;
  /** How often the job runs: counts are written, reports made and sent. */
  readonly tickMs: number;
  /** RELAY_RETENTION: how long reports done with are kept after their period; 0: for ever. */
  readonly keepReportsMs: number;
  /** Queue a report mail through the relay's own ingress. */
  readonly sendMail: (mail: { readonly from: string; readonly to: string; readonly body: Uint8Array }) => Promise<void>;
  /** POST a report; resolves with the HTTP status. `signal` aborts it at shutdown. */
  readonly post: (url: string, body: Uint8Array, contentType: string, signal: AbortSignal) => Promise<number>;
  readonly log: Logger;
}

/** Ended periods read per query, TLSRPT lookups at once, reports delivered per run. */
const PERIOD_BATCH = 200;
const LOOKUPS_AT_ONCE = 10;
const DELIVERY_BATCH = 50;
/** RFC 8460 5.5: redelivery "for up to 24 hours after the initial attempt", with exponential backoff. */
const RETRY_FOR_MS = 24 * 3_600_000;
const FIRST_RETRY_MS = 5 * 60_000;
/** A TLSRPT record that cannot be looked up is tried again at each tick for this long after the period, then the counts are dropped. */
const LOOKUP_FOR_MS = 24 * 3_600_000;
/**
 * RFC 8460 4.1: reports "should be delivered after some delay" so that
 * receivers are not flooded at midnight: each is due at a random point in
 * the first tenth of the next period, an hour at most.
 */
const MAX_SPREAD_MS = 3_600_000;
const PRUNE_EVERY_MS = 3_600_000;

export class TlsReporter {
  private timer: unknown;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Aborts an upload in progress at shutdown, which does not wait for a slow endpoint. */
  private readonly shutdown = new AbortController();
  private nextPruneAt = 0;

  constructor(private readonly deps: TlsReporterDeps) {}

  /** The first run catches up on periods that ended while the relay was down. */
  start(): void {
    this.schedule(0);
  }

  /** No more runs; the counts so far are written (a clean shutdown loses none). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.shutdown.abort();
    this.deps.clock.clearTimeout(this.timer);
    await this.running;
    await this.flush();
  }

  /** One run of the job (see above). */
  async run(): Promise<void> {
    if (!(await this.flush())) return;
    const now = this.deps.clock.now();
    await this.makeReports(now);
    await this.deliverDue(now);
    if (this.deps.keepReportsMs > 0 && now >= this.nextPruneAt) {
      this.nextPruneAt = now + PRUNE_EVERY_MS;
      await this.deps.store.pruneReports(now - this.deps.keepReportsMs);
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.running = this.run()
        .catch((error) => this.deps.log("error", "TLS reporting failed; trying again later", { error: String(error) }))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.deps.tickMs);
        });
    }, delayMs);
  }

  /** Counts to the database; false (and the counts kept for the next try) when that failed. */
  private async flush(): Promise<boolean> {
    const rows = this.deps.tally.take();
    try {
      await this.deps.store.addCounts(rows);
      return true;
    } catch (error) {
      this.deps.tally.restore(rows);
      this.deps.log("warn", "writing TLS report counts failed; kept for the next try", { error: String(error) });
      return false;
    }
  }

  private async makeReports(now: number): Promise<void> {
    for (;;) {
      const periods = await this.deps.store.endedPeriods(now, PERIOD_BATCH);
      let settled = 0;
      for (let i = 0; i < periods.length; i += LOOKUPS_AT_ONCE) {
        const done = await Promise.all(periods.slice(i, i + LOOKUPS_AT_ONCE).map((p) => this.makeReport(p, now)));
        settled += done.filter(Boolean).length;
      }
      // Only a full batch that was all settled may hide more: anything left waits for the next tick.
      if (periods.length < PERIOD_BATCH || settled < periods.length) return;
    }
  }

  /** True when the period is settled (reported, or dropped); false to try again at the next tick. */
  private async makeReport(period: TlsReportPeriod, now: number): Promise<boolean> {
    const { policyDomain } = period;
    const txt = await this.deps.resolver.txt(`_smtp._tls.${policyDomain}`);
    if (!txt.ok && txt.error !== "NXDOMAIN" && txt.error !== "NODATA") {
      if (now - period.periodEnd < LOOKUP_FOR_MS) return false;
      this.deps.log("warn", "TLSRPT record lookup kept failing; the period goes unreported", {
        domain: policyDomain,
        error: txt.error,
      });
      await this.deps.store.settlePeriod(period, undefined, now);
      return true;
    }
    const record = txt.ok ? selectTlsRptRecord(txt.answers) : undefined;
    const ruas = record?.ok ? record.record.destinations.map((d) => d.uri) : [];
    if (ruas.length === 0) {
      // RFC 8460 3: no (single, valid) record means the domain does not implement TLSRPT.
      await this.deps.store.settlePeriod(period, undefined, now);
      return true;
    }
    const rows = await this.deps.store.counts(period);
    // Report-ID in msg-id form, as the Subject carries it (RFC 8460 5.3).
    const reportId = `${newId(now)}@${this.deps.hostname}`;
    const report = buildReport({
      organizationName: this.deps.organizationName,
      contactInfo: this.deps.contactInfo,
      reportId,
      policyDomain,
      periodStart: period.periodStart,
      periodEnd: period.periodEnd,
      rows,
    });
    const gzipped = new Uint8Array(gzipSync(JSON.stringify(report)));
    const spread = Math.floor(Math.random() * Math.min(MAX_SPREAD_MS, this.deps.periodMs / 10));
    await this.deps.store.settlePeriod(period, { ...period, reportId, report: gzipped, ruas }, now, now + spread);
    return true;
  }

  private async deliverDue(now: number): Promise<void> {
    for (const delivery of await this.deps.store.dueDeliveries(now, DELIVERY_BATCH)) {
      if (this.stopped) return;
      try {
        await this.deliver(delivery);
      } catch (error) {
        if (this.stopped) return; // cut short by the shutdown: still due, at the next start
        await this.failed(delivery, error instanceof Error ? error.message : String(error));
        continue;
      }
      await this.deps.store.markSent(delivery, this.deps.clock.now());
      const report = JSON.parse(gunzipSync(delivery.report).toString("utf8")) as TlsReportJson;
      const total = (key: "total-successful-session-count" | "total-failure-session-count") =>
        report.policies.reduce((sum, p) => sum + p.summary[key], 0);
      this.deps.log("info", "TLS report sent", {
        domain: delivery.policyDomain,
        rua: delivery.rua,
        report_id: delivery.reportId,
        start: rfc3339(delivery.periodStart),
        end: rfc3339(delivery.periodEnd),
        successful_sessions: total("total-successful-session-count"),
        failed_sessions: total("total-failure-session-count"),
      });
    }
  }

  private async deliver(delivery: TlsReportDelivery): Promise<void> {
    const destination = reportDestination(delivery.rua);
    if (!destination) throw new Error(`"${delivery.rua}" is not a mailto: or https: destination`);
    if (destination.kind === "mailto") {
      const from = `tlsrpt-noreply@${this.deps.hostname}`;
      const body = await reportMail({
        from,
        to: destination.address,
        submitter: this.deps.hostname,
        policyDomain: delivery.policyDomain,
        reportId: delivery.reportId,
        periodStart: delivery.periodStart,
        periodEnd: delivery.periodEnd,
        gzipped: delivery.report,
        now: this.deps.clock.now(),
      });
      await this.deps.sendMail({ from, to: destination.address, body });
      return;
    }
    // RFC 8460 5.4: POST, application/tlsrpt+gzip for a compressed report; a 2xx is success.
    const status = await this.deps.post(
      destination.uri,
      delivery.report,
      "application/tlsrpt+gzip",
      this.shutdown.signal,
    );
    if (status < 200 || status > 299) throw new Error(`${destination.uri} answered HTTP ${status}`);
  }

  private async failed(delivery: TlsReportDelivery, error: string): Promise<void> {
    const now = this.deps.clock.now();
    const retryAt = now + FIRST_RETRY_MS * 2 ** delivery.attempts;
    const giveUp = retryAt > delivery.createdAt + RETRY_FOR_MS;
    await this.deps.store.markFailed(delivery, error, giveUp ? undefined : retryAt);
    const fields = {
      domain: delivery.policyDomain,
      rua: delivery.rua,
      report_id: delivery.reportId,
      attempts: delivery.attempts + 1,
      error,
    };
    if (giveUp) this.deps.log("warn", "TLS report not delivered; given up (RFC 8460 5.5)", fields);
    else {this.deps.log("warn", "TLS report not delivered; will retry", {
        ...fields,
        retry_at: new Date(retryAt).toISOString(),
      });}
  }
}
