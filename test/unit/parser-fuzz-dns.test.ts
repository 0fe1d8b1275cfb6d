/**
 * Fuzzing the DNS message decoder (src/dns/decode.ts), which reads whatever
 * comes back from the network: over random bytes and mutations of encoded
 * answers it returns { ok } or { ok: false, error }, never throws, and ends
 * (compression loops are refused; a hang is the runner's timeout). What the
 * encoder wrote decodes to the same message. RELAY_FUZZ_RUNS=N scales the runs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decodeMessage, encodeMessage, formatIpv6, type Message, type ResourceRecord } from "../../src/dns/wire.ts";
import { mutated, runs } from "../helpers/fuzz.ts";

const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join("."));
const octet = fc.integer({ min: 0, max: 255 });

const recordData = fc.oneof(
  fc.tuple(octet, octet, octet, octet).map((o) => ({ type: "A" as const, address: o.join(".") })),
  // In RFC 5952 form, as the decoder writes it.
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => ({ type: "AAAA" as const, address: formatIpv6(b) })),
  fc.record({ type: fc.constant("MX" as const), preference: fc.integer({ min: 0, max: 0xffff }), exchange: name }),
  fc.record({
    type: fc.constant("TXT" as const),
    strings: fc.array(fc.string({ maxLength: 60 }), { minLength: 1, maxLength: 3 }),
  }),
  fc.record({ type: fc.constantFrom("CNAME" as const, "NS" as const, "PTR" as const), target: name }),
);

const record: fc.Arbitrary<ResourceRecord> = fc.tuple(recordData, name, fc.integer({ min: 0, max: 0x7fffffff }))
  .map(([data, owner, ttl]) => ({ ...data, name: owner, class: 1, ttl }));

const message: fc.Arbitrary<Message> = fc.record({
  header: fc.record({
    id: fc.integer({ min: 0, max: 0xffff }),
    qr: fc.boolean(),
    opcode: fc.constant(0),
    aa: fc.boolean(),
    tc: fc.boolean(),
    rd: fc.boolean(),
    ra: fc.boolean(),
    rcode: fc.integer({ min: 0, max: 5 }),
  }),
  questions: fc.array(fc.record({ name, type: fc.constantFrom(1, 15, 16, 28), class: fc.constant(1) }), {
    maxLength: 2,
  }),
  answers: fc.array(record, { maxLength: 4 }),
  authorities: fc.array(record, { maxLength: 2 }),
  additionals: fc.array(record, { maxLength: 2 }),
});

/** fast-check's records have no prototype; the decoder's are plain objects. */
const plain = <T>(value: T): T => JSON.parse(JSON.stringify(value));

/** decodeMessage's contract: a value either way, an error that says something. */
function decode(bytes: Uint8Array): void {
  const result = decodeMessage(bytes);
  if (!result.ok) assert.ok(result.error.length > 0);
}

describe("DNS message decoding under fuzzing", () => {
  it("an encoded message decodes to the same message", () => {
    fc.assert(
      fc.property(message, (m) => {
        const result = decodeMessage(encodeMessage(m));
        assert.ok(result.ok, result.ok ? "" : result.error);
        assert.deepEqual(result.message, plain(m));
      }),
      runs(300),
    );
  });

  it("random bytes, with or without a plausible header, give a result", () => {
    const header = fc.uint8Array({ minLength: 12, maxLength: 12 }).map((h) => h.fill(0, 4, 12));
    const counts = fc.tuple(header, fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }));
    const withCounts = fc.tuple(counts, fc.uint8Array({ maxLength: 600 })).map(([[h, c], body]) => {
      c.forEach((n, i) => (h[5 + 2 * i] = n));
      return Uint8Array.from([...h, ...body]);
    });
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), withCounts), decode), runs(1000));
  });

  it("mutated answers give a result", () => {
    fc.assert(fc.property(mutated(message.map(encodeMessage)), decode), runs(1000));
  });
});
