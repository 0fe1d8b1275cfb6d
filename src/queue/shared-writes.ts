import type { InStatement } from "@libsql/client";

/**
 * How a transaction on the node's database writes to the state the fleet
 * shares (the suppression a hard bounce calls for): given the statements,
 * the ones to run in the transaction instead.
 */
export type SharedWrites = (statements: readonly InStatement[], now: number) => InStatement[];

/** A node alone: its database is the shared state, the statements run as they are. */
export const inPlace: SharedWrites = (statements) => [...statements];

/**
 * In a fleet: each statement is kept in the node's outbox (shared_outbox), in
 * the same transaction as what called for it, and applied on the shared
 * server later (src/fleet/outbox-forwarder.ts), so a partition loses none.
 */
export const throughOutbox: SharedWrites = (statements, now) =>
  statements.map((statement) => {
    const { sql, args = [] } = typeof statement === "string" ? { sql: statement } : statement;
    if (!Array.isArray(args)) throw new TypeError("an outbox statement takes positional arguments");
    return {
      sql: "INSERT INTO shared_outbox (statement, created_at) VALUES (?, ?)",
      args: [JSON.stringify({ sql, args }), now],
    };
  });
