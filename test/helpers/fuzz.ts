/**
 * Shared pieces of the property-based fuzz tests (test/unit/parser-fuzz-*.test.ts).
 * RELAY_FUZZ_RUNS=N runs each property N times rather than its CI-sized count;
 * a long run needs a longer test timeout than bun's 5 s:
 *   RELAY_FUZZ_RUNS=30000 bun test --timeout 600000 test/unit/parser-fuzz-*.test.ts
 * The coverage-guided counterpart is scripts/fuzz.ts.
 */
import fc from "fast-check";
import { concatBytes } from "./bytes.ts";

const RUNS = Number(process.env.RELAY_FUZZ_RUNS) || 0;

/** fast-check parameters: `ci` runs, or RELAY_FUZZ_RUNS when set. */
export const runs = (ci: number) => ({ numRuns: RUNS || ci });

const encoder = new TextEncoder();

/** One edit of a byte string: flip, insert, delete, duplicate a slice, or truncate. */
type Edit =
  | { kind: "set"; at: number; byte: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number }
  | { kind: "repeat"; at: number; length: number; times: number }
  | { kind: "truncate"; at: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 8 }),
      fc.constantFrom("\r\n", "\r", "\n", ".", "\0", " ", ":", "<", ">", "@", '"', "\\", ";", "=", "\xff")
        .map((s) => encoder.encode(s)),
    ),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({
    kind: fc.constant("repeat" as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 16 }),
    times: fc.integer({ min: 2, max: 50 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);

function apply(bytes: Uint8Array, e: Edit): Uint8Array {
  const at = bytes.length === 0 ? 0 : e.at % (bytes.length + 1);
  const join = (...parts: Uint8Array[]) => concatBytes(parts);
  switch (e.kind) {
    case "set":
      if (at >= bytes.length) return bytes;
      return join(bytes.subarray(0, at), new Uint8Array([e.byte]), bytes.subarray(at + 1));
    case "insert":
      return join(bytes.subarray(0, at), e.bytes, bytes.subarray(at));
    case "delete":
      return join(bytes.subarray(0, at), bytes.subarray(at + e.length));
    case "repeat": {
      const slice = bytes.subarray(at, at + e.length);
      return join(bytes.subarray(0, at), ...Array<Uint8Array>(e.times).fill(slice), bytes.subarray(at + e.length));
    }
    case "truncate":
      return bytes.subarray(0, at);
  }
}

/** Valid inputs with a few random edits each (and now and then none), so the fuzz reaches past the first check. */
export function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.array(edit, { maxLength: 4 })).map(([bytes, edits]) => edits.reduce(apply, bytes));
}

/** As mutated, on text: the bytes edited, then read back as UTF-8 (a broken sequence becomes U+FFFD). */
export function mutatedText(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const decoder = new TextDecoder();
  return mutated(valid.map((s) => encoder.encode(s))).map((bytes) => decoder.decode(bytes));
}

/** Text made of the characters a parser cares about, mixed with any others. */
export function trickyText(specials: string, maxLength = 80): fc.Arbitrary<string> {
  return fc.string({
    unit: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...specials) },
      { weight: 3, arbitrary: fc.constantFrom(..."abcxyz019.-_") },
      { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
    ),
    maxLength,
  });
}
