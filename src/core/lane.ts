/**
 * A message's delivery class: `transactional` (what a person waits for: a
 * receipt, a password reset) or `bulk` (newsletters, campaigns). Bulk is
 * what is held back first: it yields to transactional mail at each
 * destination and is what warmup caps first.
 */
export const LANES = ["transactional", "bulk"] as const;
export type Lane = (typeof LANES)[number];

/** Mail nothing marks is transactional: held back only by what holds back all mail. */
export const DEFAULT_LANE: Lane = "transactional";
