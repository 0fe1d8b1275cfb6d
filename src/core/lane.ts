import { UsageError } from "./errors.ts";

/**
 * Priority lanes (issue 13): transactional mail (receipts, password resets)
 * is claimed and sent before bulk mail (newsletters, campaigns), so it never
 * waits behind a bulk backlog. Mail nothing marks is transactional: the
 * relay's own DSNs and reports are, and an operator opts bulk senders in.
 * Outside the code the lane is called `priority`, the name of the HTTP field.
 * Bulk is also what warmup caps first.
 */
/** In the order the scheduler claims them. */
export const lanes = ["transactional", "bulk"] as const;
export type Lane = (typeof lanes)[number];

export const DEFAULT_LANE: Lane = "transactional";

/** A lane named in text (a header value, a command-line option), blanks and case ignored; undefined for anything else. */
export function parseLane(text: string): Lane | undefined {
  const name = text.trim().toLowerCase();
  return (lanes as readonly string[]).includes(name) ? (name as Lane) : undefined;
}

/** A lane given as an option (`--priority bulk`); throws UsageError quoting anything else. */
export function laneOption(text: string): Lane {
  const lane = parseLane(text);
  if (lane === undefined) {
    throw new UsageError([`priority ${JSON.stringify(text)} is not valid: expected ${lanes.join(" or ")}`]);
  }
  return lane;
}
