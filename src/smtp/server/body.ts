import type { Reply } from "../../core/reply.ts";

/**
 * Raw input that follows a command (a DATA body, a BDAT chunk). While one is
 * open the session hands it every byte it receives; push returns the bytes
 * after its end, and finish gives the command's reply.
 */
export interface Body {
  push(chunk: Uint8Array): Uint8Array | undefined;
  finish(): Promise<Reply>;
}
