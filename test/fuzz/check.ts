export { concatBytes as concat } from "../helpers/bytes.ts";

/** What the Jazzer.js targets report: a thrown Error is a finding (scripts/fuzz.ts). */
export function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`invariant broken: ${what}`);
}

/**
 * The fuzzer's input as a plain Uint8Array (a Buffer's slice is a view, and
 * its JSON differs) split in two: its first four bytes give the sizes of the
 * chunks the rest comes in, as a socket might deliver it (see chunks).
 */
export function sizesAndPayload(data: Buffer): { sizes: Uint8Array; payload: Uint8Array } {
  const bytes = new Uint8Array(data);
  return { sizes: bytes.subarray(0, 4), payload: bytes.subarray(4) };
}

/** `payload` cut into fresh chunks of 1 + sizes[i] bytes, cycling through the sizes (one chunk without any). */
export function chunks(payload: Uint8Array, sizes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < payload.length; i++) {
    const size = sizes.length === 0 ? payload.length : 1 + sizes[i % sizes.length]!;
    out.push(payload.slice(at, at + size));
    at += size;
  }
  return out;
}
