/** A message or connection rate such as "100/h": `count` events per `per`. */
export interface Rate {
  readonly count: number;
  readonly per: RateUnit;
}

export type RateUnit = "s" | "min" | "h" | "d";

/** A rate, or no limit at all. */
export type RateLimit = Rate | "unlimited";

const UNITS: ReadonlyMap<string, RateUnit> = new Map([
  ["s", "s"],
  ["sec", "s"],
  ["second", "s"],
  ["m", "min"],
  ["min", "min"],
  ["minute", "min"],
  ["h", "h"],
  ["hr", "h"],
  ["hour", "h"],
  ["d", "d"],
  ["day", "d"],
]);

/** "100/h", "10/min", "5/s", "2000/day", or "unlimited"; undefined for anything else. */
export function parseRateLimit(text: string): RateLimit | undefined {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === "unlimited") return "unlimited";
  const match = /^(\d+)\s*\/\s*([a-z]+)$/.exec(trimmed);
  const per = match ? UNITS.get(match[2]!) : undefined;
  const count = Number(match?.[1]);
  if (per === undefined || !Number.isSafeInteger(count) || count < 1) return undefined;
  return { count, per };
}

/** A rate as the file writes it: "100/h", "unlimited". */
export function formatRateLimit(rate: RateLimit): string {
  return rate === "unlimited" ? rate : `${rate.count}/${rate.per}`;
}
