/**
 * The modifications a milter asks for at end of message, collected as plain
 * data for the caller to apply. Each needs the action the milter announced
 * in negotiation (mfapi.h SMFIF_*); body replacement arrives in chunks
 * (smfi_replacebody sends at most MILTER_CHUNK_SIZE each) and is joined into
 * one. The total is bounded, so a milter cannot grow memory without limit.
 */
import { Action, Reply } from "./constants.ts";
import { describeCode } from "./decoder.ts";
import { MilterProtocolError } from "./errors.ts";
import type { MilterReply } from "./replies.ts";

export type MilterModification =
  | Extract<
    MilterReply,
    { kind: "add-header" | "insert-header" | "change-header" | "change-sender" | "add-recipient" | "delete-recipient" }
  >
  | { readonly kind: "replace-body"; readonly body: Uint8Array };

/** The action each reply needs (quarantine included: it is not a modification, but needs SMFIF_QUARANTINE). */
export const REQUIRED_ACTION: Readonly<Record<number, number>> = {
  [Reply.ADDHEADER]: Action.ADDHDRS,
  [Reply.INSHEADER]: Action.ADDHDRS,
  [Reply.CHGHEADER]: Action.CHGHDRS,
  [Reply.CHGFROM]: Action.CHGFROM,
  [Reply.ADDRCPT]: Action.ADDRCPT,
  [Reply.ADDRCPT_PAR]: Action.ADDRCPT_PAR,
  [Reply.DELRCPT]: Action.DELRCPT,
  [Reply.REPLBODY]: Action.CHGBODY,
  [Reply.QUARANTINE]: Action.QUARANTINE,
};

/** Refuse a reply whose action the milter did not announce. */
export function checkAction(code: number, actions: number): void {
  const required = REQUIRED_ACTION[code];
  if (required !== undefined && (actions & required) === 0) {
    throw new MilterProtocolError(`reply ${describeCode(code)} needs an action the milter did not negotiate`);
  }
}

export class EditCollector {
  readonly #edits: MilterModification[] = [];
  readonly #bodyChunks: Uint8Array[] = [];
  #bodyAt = -1;
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  add(edit: Exclude<MilterModification, { kind: "replace-body" }> | { kind: "replace-body"; chunk: Uint8Array }): void {
    this.#bytes += edit.kind === "replace-body" ? edit.chunk.length : JSON.stringify(edit).length;
    if (this.#bytes > this.maxBytes) {
      throw new MilterProtocolError(`the milter's modifications exceed ${this.maxBytes} bytes`);
    }
    if (edit.kind !== "replace-body") {
      this.#edits.push(edit);
      return;
    }
    if (this.#bodyAt < 0) this.#bodyAt = this.#edits.length;
    this.#bodyChunks.push(edit.chunk);
  }

  /** The modifications in the order asked, the replaced body where its first chunk came. */
  list(): MilterModification[] {
    if (this.#bodyAt < 0) return [...this.#edits];
    const body = new Uint8Array(this.#bodyChunks.reduce((sum, chunk) => sum + chunk.length, 0));
    let pos = 0;
    for (const chunk of this.#bodyChunks) {
      body.set(chunk, pos);
      pos += chunk.length;
    }
    const edits: MilterModification[] = [...this.#edits];
    edits.splice(this.#bodyAt, 0, { kind: "replace-body", body });
    return edits;
  }
}
