import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import * as v from "valibot";
import type { WarmupEntry } from "../shaping/warmup-ledger.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";

/** What the route shows: whether the rules switch warmup on, and the ledger's state when they do. */
export interface WarmupRouteDeps {
  readonly enabled: boolean;
  /** Every source IP and provider, brought up to now. */
  readonly report: () => readonly WarmupEntry[];
}

const iso = (ms: number) => new Date(ms).toISOString();
const timestamp = v.pipe(v.string(), v.description("RFC 3339 time"));
const fraction = v.pipe(v.number(), v.description("a fraction of the messages sent in the window: 0.001 is 0.1%"));
const caps = v.object({ daily: v.number(), hourly: v.number() });

const entrySchema = v.pipe(
  v.object({
    source_ip: v.pipe(v.string(), v.description('the source IP, or "any" when the relay binds none')),
    provider: v.pipe(
      v.string(),
      v.description('a provider of the shaping rules, or "other" for MX hosts that no provider matches'),
    ),
    warm: v.pipe(v.boolean(), v.description("past the last step: uncapped, and no longer judged")),
    step: v.pipe(v.nullable(v.number()), v.description("the current step, 1 to `steps`; null when warm")),
    steps: v.number(),
    step_since: timestamp,
    caps: v.pipe(v.nullable(caps), v.description("the current step's caps; null when warm")),
    bulk_caps: v.pipe(
      v.nullable(caps),
      v.description("what bulk mail may use of them; the rest is kept for transactional mail"),
    ),
    sent: v.pipe(
      v.object({ hour: v.number(), day: v.number(), hour_started_at: timestamp, day_started_at: timestamp }),
      v.description("messages sent in the hour and the day the caps count"),
    ),
    window: v.pipe(
      v.object({
        started_at: timestamp,
        ends_at: timestamp,
        sent: v.number(),
        delivered: v.number(),
        deferred: v.number(),
        blocked: v.pipe(v.number(), v.description("refused for spam or policy")),
        complained: v.number(),
      }),
      v.description("the measurement window whose rates decide the next step"),
    ),
    rates: v.object({ deferral_rate: fraction, block_rate: fraction, complaint_rate: fraction }),
    next_evaluation: v.pipe(
      v.nullable(v.object({
        at: timestamp,
        action: v.picklist(["promote", "hold", "demote"]),
        reason: v.string(),
      })),
      v.description("what the window's counts so far would do when it ends; null when warm"),
    ),
  }),
  v.metadata({ ref: "WarmupEntry" }),
);

const warmupSchema = v.pipe(
  v.object({
    enabled: v.pipe(v.boolean(), v.description("whether the shaping rules switch warmup on")),
    entries: v.pipe(
      v.array(entrySchema),
      v.description("each source IP and provider mail has gone to (or been held for) since warmup began"),
    ),
  }),
  v.metadata({ ref: "Warmup" }),
);

function entryJson(e: WarmupEntry): v.InferOutput<typeof entrySchema> {
  return {
    source_ip: e.sourceIp,
    provider: e.provider,
    warm: e.warm,
    step: e.warm ? null : e.step + 1,
    steps: e.steps,
    step_since: iso(e.stepSince),
    caps: e.caps ? { daily: e.caps.daily, hourly: e.caps.hourly } : null,
    bulk_caps: e.bulkCaps ? { daily: e.bulkCaps.daily, hourly: e.bulkCaps.hourly } : null,
    sent: { hour: e.hour.sent, day: e.day.sent, hour_started_at: iso(e.hour.start), day_started_at: iso(e.day.start) },
    window: {
      started_at: iso(e.window.start),
      ends_at: iso(e.window.end),
      sent: e.window.sent,
      delivered: e.window.delivered,
      deferred: e.window.deferred,
      blocked: e.window.blocked,
      complained: e.window.complained,
    },
    rates: {
      deferral_rate: e.rates.deferralRate,
      block_rate: e.rates.blockRate,
      complaint_rate: e.rates.complaintRate,
    },
    next_evaluation: e.next ? { at: iso(e.next.at), action: e.next.action, reason: e.next.reason } : null,
  };
}

/** IP warmup: each source IP and provider's step, caps, counts and rates, read-only. */
export function warmupRoutes(deps: WarmupRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get(
    "/",
    describeRoute({
      tags: ["shaping"],
      summary: "IP warmup state per source IP and provider",
      description: "When the shaping rules leave warmup off: `enabled` false and no entries.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("The warmup state", warmupSchema),
        ...problemResponses({ 401: "Missing or unknown bearer token", 403: 'The token lacks the "admin" scope' }),
      },
    }),
    (c) => c.json({ enabled: deps.enabled, entries: deps.enabled ? deps.report().map(entryJson) : [] }),
  );
  return app;
}
