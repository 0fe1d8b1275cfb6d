/**
 * The operators phase of scripts/bench (issue 15), relay only: the end-to-end
 * 5 KB x 20 case (PLAN.operatorsMessages a run) on a quiet relay (RELAY_LOG_LEVEL=warn, nothing watching)
 * and on an observed one: a delivery log line per event at info (written to
 * the harness's log file, as a service's stderr goes to the journal),
 * GET /metrics scraped every second, and a webhook endpoint on loopback
 * subscribed to every event. The two take turns; the medians are compared
 * (the target: within 5%). The webhook receiver counts what it was sent, and
 * after each observed run the endpoint's backlog is waited for (at most
 * CATCH_UP_MS), so the report says whether every event arrived and how long
 * after the last message it did.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";

export interface OperatorsBenchContext {
  readonly rounds: number;
  /** The relay's HTTP API, and a token with every scope. */
  readonly http: string;
  readonly adminToken: string;
  /** Start the relay (fresh data directory) with this environment on top of the bench's. */
  start(tag: string, env: Record<string, string>): Promise<void>;
  stop(): Promise<void>;
  /** One measured end-to-end 5 KB x 20 run against the running relay (a fresh sink, warmed up first). */
  e2e(tag: string): Promise<{ rate: number; cpuMsPerMsg?: number; error?: string; capped: boolean }>;
  log(line: string): void;
}

type Variant = "quiet" | "observed";

/** How long an observed run's webhook backlog is waited for once its mail is delivered. */
const CATCH_UP_MS = 30_000;

export interface OperatorsRow {
  readonly variant: Variant;
  readonly round: number;
  readonly rate: number;
  readonly cpuMsPerMsg?: number;
  readonly error?: string;
  /** Observed only: scrapes of /metrics that answered 200, and events the webhook receiver got. */
  readonly scrapes?: number;
  readonly webhookEvents?: number;
  /** Observed only: ms from the run's end until the endpoint had every event (undefined: not within CATCH_UP_MS). */
  readonly webhookCatchUpMs?: number;
}

export interface OperatorsResult {
  readonly rows: OperatorsRow[];
}

/** A loopback endpoint that takes every batch at once (204) and counts its events. */
async function webhookReceiver(): Promise<{ server: Server; url: string; events: () => number }> {
  let events = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { data?: { events?: unknown[] } };
      events += body.data?.events?.length ?? 0;
      res.writeHead(204).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}/hook`, events: () => events };
}

/** GET /metrics once a second until stopped; resolves with how many answered 200. */
function scrapeEverySecond(ctx: OperatorsBenchContext): { stop: () => Promise<number> } {
  let ok = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      const response = await fetch(`${ctx.http}/metrics`, {
        headers: { authorization: `Bearer ${ctx.adminToken}` },
      }).catch(() => undefined);
      if (response?.ok) ok++;
      await response?.arrayBuffer();
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (performance.now() - started))));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return ok;
    },
  };
}

/** Ms until the endpoint's backlog is empty, polled every 50 ms; undefined when it is not within CATCH_UP_MS. */
async function backlogDrained(ctx: OperatorsBenchContext, id: string): Promise<number | undefined> {
  const started = performance.now();
  while (performance.now() - started < CATCH_UP_MS) {
    const response = await fetch(`${ctx.http}/v1/webhooks/${id}`, {
      headers: { authorization: `Bearer ${ctx.adminToken}` },
    });
    const { backlog } = await response.json() as { backlog: number };
    if (backlog === 0) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

async function observedRound(ctx: OperatorsBenchContext, round: number): Promise<OperatorsRow> {
  const receiver = await webhookReceiver();
  try {
    await ctx.start(`operators-observed-${round}`, { RELAY_LOG_LEVEL: "info", RELAY_WEBHOOK_ALLOW_PRIVATE: "true" });
    const registered = await fetch(`${ctx.http}/v1/webhooks`, {
      method: "POST",
      headers: { authorization: `Bearer ${ctx.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ url: receiver.url, events: ["*"], description: "bench" }),
    });
    if (registered.status !== 201) {
      throw new Error(`POST /v1/webhooks: ${registered.status} ${await registered.text()}`);
    }
    const { id } = await registered.json() as { id: string };
    const scraper = scrapeEverySecond(ctx);
    const r = await ctx.e2e(`operators-observed-${round}`);
    const scrapes = await scraper.stop();
    const webhookCatchUpMs = await backlogDrained(ctx, id);
    return { variant: "observed", round, ...r, scrapes, webhookEvents: receiver.events(), webhookCatchUpMs };
  } finally {
    await ctx.stop();
    receiver.server.close();
  }
}

async function quietRound(ctx: OperatorsBenchContext, round: number): Promise<OperatorsRow> {
  try {
    await ctx.start(`operators-quiet-${round}`, { RELAY_LOG_LEVEL: "warn" });
    const r = await ctx.e2e(`operators-quiet-${round}`);
    return { variant: "quiet", round, ...r };
  } finally {
    await ctx.stop();
  }
}

export async function operatorsBench(ctx: OperatorsBenchContext): Promise<OperatorsResult> {
  const rows: OperatorsRow[] = [];
  for (let round = 1; round <= ctx.rounds; round++) {
    const order: Variant[] = round % 2 ? ["quiet", "observed"] : ["observed", "quiet"];
    for (const variant of order) {
      const row = variant === "quiet" ? await quietRound(ctx, round) : await observedRound(ctx, round);
      rows.push(row);
      ctx.log(
        `operators ${variant}, round ${round}: ${row.rate.toFixed(0)} msg/s` +
          (row.scrapes === undefined
            ? ""
            : `, ${row.scrapes} scrapes, ${row.webhookEvents} webhook events ${
              row.webhookCatchUpMs === undefined ? "(backlog left)" : `(all in ${row.webhookCatchUpMs.toFixed(0)} ms)`
            }`) +
          (row.error ? ` (${row.error})` : ""),
      );
    }
  }
  return { rows };
}

const median = (xs: number[]) => xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : undefined;
const fixed = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(d));

export function operatorsReport(result: OperatorsResult): { lines: string[]; ratio: Record<string, unknown> } {
  const of = (variant: Variant) => result.rows.filter((r) => r.variant === variant && !r.error);
  const rate = (variant: Variant) => median(of(variant).map((r) => r.rate));
  const cpu = (variant: Variant) =>
    median(of(variant).flatMap((r) => (r.cpuMsPerMsg === undefined ? [] : [r.cpuMsPerMsg])));
  const [quiet, observed] = [rate("quiet"), rate("observed")];
  const ratio = quiet && observed ? observed / quiet : undefined;
  // Each round's two runs are next to each other in time (ABBA order), so their ratio shares the machine's
  // conditions of the moment; the median of those ratios is the steadier estimate on a shared machine.
  const paired = median(
    result.rows.flatMap((q) => {
      const o = q.variant === "quiet" && !q.error ? of("observed").find((r) => r.round === q.round) : undefined;
      return o ? [o.rate / q.rate] : [];
    }),
  );
  return {
    lines: [
      "",
      `### Operators (issue 15): end to end 5 KB x 20, median of ${result.rows.length / 2} rounds`,
      "",
      "| run | msg/s | CPU ms/msg |",
      "| --- | ---: | ---: |",
      `| quiet: log at warn, nothing watching | ${fixed(quiet)} | ${fixed(cpu("quiet"), 3)} |`,
      `| observed: a log line per event at info, /metrics every second, a webhook for every event | ${
        fixed(observed)
      } | ${fixed(cpu("observed"), 3)} |`,
      `| observed / quiet, of the medians (target: within 5%) | ${fixed(ratio, 3)} | |`,
      `| observed / quiet, the median of each round's pair | ${fixed(paired, 3)} | |`,
      "",
      `Webhook events received per observed round: ${of("observed").map((r) => r.webhookEvents).join(", ")}, ` +
      `the last of them ${
        of("observed").map((r) => r.webhookCatchUpMs === undefined ? "never" : `${r.webhookCatchUpMs.toFixed(0)} ms`)
          .join(", ")
      } after the last message was delivered; ` +
      `scrapes: ${of("observed").map((r) => r.scrapes).join(", ")}.`,
    ],
    ratio: {
      phase: "operators",
      quiet_rate: quiet,
      observed_rate: observed,
      observed_over_quiet: ratio,
      observed_over_quiet_paired: paired,
    },
  };
}
