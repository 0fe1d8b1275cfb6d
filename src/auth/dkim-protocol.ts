import type { DkimAlgorithm } from "./dkim-keys.ts";

/** Messages to and from the DKIM signing worker (structured-clone friendly: keys as PEM). */
export interface SignRequest {
  readonly id: number;
  readonly message: Uint8Array;
  readonly keys: readonly {
    readonly domain: string;
    readonly selector: string;
    readonly algorithm: DkimAlgorithm;
    readonly pem: string;
  }[];
  readonly now: number;
}

export type SignResponse =
  | { readonly id: number; readonly ok: true; readonly message: Uint8Array }
  | { readonly id: number; readonly ok: false; readonly error: string };
