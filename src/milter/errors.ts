/**
 * How talking to a milter fails, as types the caller maps to its default
 * action (accept, tempfail, reject): the milter broke the protocol, was too
 * slow, or went away. After any of them the connection is closed: replies
 * may still be in flight, so it cannot be trusted again (milter8.c
 * milter8_comm_error does the same).
 */
export class MilterError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MilterError";
  }
}

/** The milter sent something the protocol does not allow (a bad length, code or field). */
export class MilterProtocolError extends MilterError {
  constructor(message: string) {
    super(message);
    this.name = "MilterProtocolError";
  }
}

/** The milter did not answer within the step's time. */
export class MilterTimeoutError extends MilterError {
  constructor(readonly step: string, readonly timeoutMs: number) {
    super(`milter did not answer ${step} within ${timeoutMs} ms`);
    this.name = "MilterTimeoutError";
  }
}

/** The connection ended, failed or could not be made. */
export class MilterConnectionError extends MilterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MilterConnectionError";
  }
}
