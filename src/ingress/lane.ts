import { headerValues } from "../core/header-section.ts";
import { DEFAULT_LANE, type Lane, parseLane } from "../core/lane.ts";

/** What the operator's priority header (RELAY_PRIORITY_HEADER) says in a message, when it is there. */
export type HeaderLane = { readonly lane: Lane } | { readonly unknown: string };

/**
 * The lane the header field named `header` asks for: its topmost field
 * decides (names compare case-insensitively, RFC 5322 2.2), its value
 * `transactional` or `bulk` in any case; any other value is `unknown`.
 * Undefined when the message has no such field.
 */
export function headerLane(message: Uint8Array, header: string): HeaderLane | undefined {
  const [value] = headerValues(message, header);
  if (value === undefined) return undefined;
  const lane = parseLane(value);
  return lane === undefined ? { unknown: value.trim() } : { lane };
}

/**
 * A message's lane, the first of: the one asked for with the message (the
 * HTTP `priority` field), the operator's header in the message (an unknown
 * value is passed over), the submitter's own setting (its SMTP user or API
 * key), transactional.
 */
export function laneOf(asked: Lane | undefined, header: HeaderLane | undefined, submitter: Lane | undefined): Lane {
  return asked ?? (header && "lane" in header ? header.lane : undefined) ?? submitter ?? DEFAULT_LANE;
}
