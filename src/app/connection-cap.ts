/**
 * How many SMTP connections the relay can hold within its open-file limit.
 * Every session needs its socket and, while its message is made durable, a
 * spool file; the rest of the relay (database, WAL, logs, DNS, outbound
 * deliveries, the HTTP API) must still find descriptors while SMTP is full,
 * so a quarter of the limit (at least 64) is kept for it. A connection over
 * the cap is answered "421 4.3.2" and closed while a descriptor is still
 * there to accept it with; past the limit itself, accept fails (EMFILE) and
 * the client waits unanswered in the kernel's backlog.
 */
export function connectionCap(openFileLimit: number): number {
  const reserve = Math.max(64, Math.ceil(openFileLimit / 4));
  return Math.max(1, Math.floor((openFileLimit - reserve) / 2));
}

/** RELAY_MAX_CONNECTIONS, lowered to what the open-file limit allows (undefined limit: unknown, kept). */
export function effectiveMaxConnections(
  configured: number,
  openFileLimit: number | undefined,
): { readonly max: number; readonly lowered: boolean } {
  if (openFileLimit === undefined) return { max: configured, lowered: false };
  const cap = connectionCap(openFileLimit);
  return cap < configured ? { max: cap, lowered: true } : { max: configured, lowered: false };
}
