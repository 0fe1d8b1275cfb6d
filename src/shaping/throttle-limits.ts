import { formatRateLimit, perMs, RATE_UNIT_MS, type RateLimit } from "./rate.ts";
import { type CompleteLimits, LIMIT_FILE_NAMES, THROTTLE_LIMIT_NAMES, type ThrottleLimits } from "./rules.ts";

/**
 * The limits of a throttled destination: tightening them when a second
 * throttle comes, and loosening them step by step back to the destination's
 * own when it ends.
 */

type Value = NonNullable<ThrottleLimits[keyof ThrottleLimits]>;

const isTighter = (a: Value, b: Value): boolean =>
  typeof a === "number" ? a < (b as number) : perMs(a) < perMs(b as RateLimit);

/** Field by field, the tighter of the two; a limit only one of them sets is kept. */
export function tighterLimits(a: ThrottleLimits, b: ThrottleLimits): ThrottleLimits {
  const out: Record<string, Value> = {};
  for (const name of THROTTLE_LIMIT_NAMES) {
    const [x, y] = [a[name], b[name]];
    const value = x === undefined ? y : y === undefined || !isTighter(y, x) ? x : y;
    if (value !== undefined) out[name] = value;
  }
  return out as ThrottleLimits;
}

const sameValue = (x: Value | undefined, y: Value | undefined) =>
  x === y || (typeof x === "object" && typeof y === "object" && x.count === y.count && x.per === y.per);

export function sameLimits(a: ThrottleLimits, b: ThrottleLimits): boolean {
  return THROTTLE_LIMIT_NAMES.every((name) => sameValue(a[name], b[name]));
}

/** Whether `part` sets any limit to the value `whole` has: it is (one of) what holds that limit down. */
export function setsAnyOf(part: ThrottleLimits, whole: ThrottleLimits): boolean {
  return THROTTLE_LIMIT_NAMES.some((name) => part[name] !== undefined && sameValue(part[name], whole[name]));
}

/** `from` grown geometrically toward `to` by `fraction` (0 to 1), rounded, never below `from`. */
const toward = (from: number, to: number, fraction: number) =>
  Math.max(from, Math.round(from * (to / from) ** fraction));

function stepRate(from: RateLimit, own: RateLimit, step: number, steps: number): RateLimit {
  if (from === "unlimited") return own;
  // Counted in the throttle's own unit, so that "1/min" grows as 2/min, 4/min, ...
  const ownCount = perMs(own) * RATE_UNIT_MS[from.per];
  if (ownCount <= from.count) return own;
  // Nothing to aim at below an unlimited own rate: each step doubles the rate, and the last lifts it.
  const count = ownCount === Infinity ? from.count * 2 ** step : toward(from.count, ownCount, step / steps);
  return { count, per: from.per };
}

/**
 * The limits at recovery step `step` of `steps` (1 <= step < steps; after
 * the last step the destination's own limits apply again): each limit the
 * throttle set grows geometrically from the throttle's value to the
 * destination's own, so that the first steps, where a receiver is most
 * likely to complain again, are small ones (1/min toward 1000/min in 3
 * steps: 10/min, then 100/min, then the own rate). A rate whose own value
 * is unlimited doubles with each step. A limit the destination's own
 * already holds tighter is its own.
 */
export function recoveryLimits(
  throttle: ThrottleLimits,
  own: Pick<CompleteLimits, keyof ThrottleLimits>,
  step: number,
  steps: number,
): ThrottleLimits {
  const out: Record<string, Value> = {};
  for (const name of THROTTLE_LIMIT_NAMES) {
    const from = throttle[name];
    if (from === undefined) continue;
    const to = own[name];
    out[name] = typeof from === "number"
      ? Math.min(to as number, toward(from, to as number, step / steps))
      : stepRate(from, to as RateLimit, step, steps);
  }
  return out as ThrottleLimits;
}

/** The limits as the shaping file names and writes them: `{ message_rate: "10/min", connections: 1 }`. */
export function limitsInFileForm(limits: ThrottleLimits): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const name of THROTTLE_LIMIT_NAMES) {
    const value = limits[name];
    if (value !== undefined) out[LIMIT_FILE_NAMES[name]] = typeof value === "number" ? value : formatRateLimit(value);
  }
  return out;
}
