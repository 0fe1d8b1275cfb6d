/**
 * Whether a failed write to the shared state failed because the server did
 * not answer (or the node runs from its replica alone, opened for reading),
 * as opposed to the server refusing the statement: libSQL's replica says
 * WriteDelegation ... Unavailable, or names the handshake, the connection
 * or the read-only file.
 */
export function sharedUnreachable(error: unknown): boolean {
  const text = error instanceof Error ? error.message : String(error);
  return /WriteDelegation|Unavailable|PrimaryHandshake|error trying to connect|Connection refused|attempt to write a readonly database/i
    .test(text);
}

/** Whether the server answered that it does not take the node's token (sqld's 401 for a JWT it refuses). */
export function sharedTokenRefused(error: unknown): boolean {
  const text = error instanceof Error ? error.message : String(error);
  return /\b401\b|unauthori[sz]ed|\bjwt\b/i.test(text);
}
