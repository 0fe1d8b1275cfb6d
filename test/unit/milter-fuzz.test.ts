/**
 * The MTA side of the milter protocol against a fuzzed milter: the decoder
 * and the reply parsers over random and mutated bytes, and whole sessions
 * against a scripted milter on loopback (test/fixtures/milter-peer.ts) that
 * answers from a generated script: replies valid and not, at any step,
 * truncated, trickled, garbage, silence, hanging up. Whatever it does, the
 * relay gets a verdict or a MilterError, within the session's timeouts (a
 * hang is the test runner's timeout), nothing escapes as an uncaught error,
 * and after an error the milter sees the connection closed.
 *
 * RELAY_FUZZ_RUNS=N runs each property N times rather than its CI-sized count
 * (a few hundred; the sessions take about 10 s).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ALL_ACTIONS, Family, MILTER_CHUNK_SIZE, OFFERED_PROTOCOL, REPLY_CODES } from "../../src/milter/constants.ts";
import { MAX_PACKET_LENGTH, PacketDecoder } from "../../src/milter/decoder.ts";
import { parseMilterEndpoint } from "../../src/milter/endpoint.ts";
import { MilterConnectionError, MilterProtocolError, MilterTimeoutError } from "../../src/milter/errors.ts";
import { FieldWriter } from "../../src/milter/fields.ts";
import { commonMacros } from "../../src/milter/macros.ts";
import { parseNegotiation, parseReply } from "../../src/milter/replies.ts";
import { type MilterMessage, MilterSession } from "../../src/milter/session.ts";
import { connectTcp } from "../../src/platform/net.ts";
import { replyPacket, type ScriptAnswer, type SeenCommand, startMilterPeer } from "../fixtures/milter-peer.ts";
import { waitUntil } from "../helpers/wait-until.ts";

const RUNS = Number(process.env.RELAY_FUZZ_RUNS) || 0;
const runs = (ci: number) => ({ numRuns: RUNS || ci });

/** A string a FieldWriter can write: mostly printable ASCII, but anything except NUL (line breaks, any code point). */
const text = (maxLength = 30) =>
  fc.string({
    unit: fc.oneof(
      { weight: 6, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }) },
      fc.constantFrom("\n", "\r", "\t", " ", "%", ":", "<", ">"),
      fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    ),
    maxLength,
  }).map((s) => s.replaceAll("\0", ""));

/** A replacement body chunk of `size` bytes, as smfi_replacebody sends them. */
const longBody = (size: number) => replyPacket("b", (w) => w.bytes(new Uint8Array(size).fill(0x78)));

/** A verdict, progress or skip: every reply without data, and reply codes mostly well-formed. */
const verdict: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom(..."acdrtps").map((letter) => replyPacket(letter)),
  fc.tuple(fc.constantFrom("4", "5", "5", "2"), fc.integer({ min: 0, max: 99 }), fc.constantFrom(" ", "-", ""), text())
    .map(([klass, n, sep, rest]) =>
      replyPacket("y", (w) => w.string(`${klass}${String(n).padStart(2, "0")}${sep}${rest}`))
    ),
);

/** A modification or quarantine, fields mostly sensible, sometimes not. */
const edit: fc.Arbitrary<Uint8Array> = fc.oneof(
  text().map((reason) => replyPacket("q", (w) => w.string(reason))),
  fc.tuple(fc.constantFrom("h", "i", "m"), fc.nat(), fc.oneof(fc.constantFrom("X-Spam", "Subject"), text(10)), text())
    .map(([letter, index, name, value]) =>
      replyPacket(letter, (w) => (letter === "h" ? w : w.uint32(index)).string(name).string(value))
    ),
  fc.tuple(fc.constantFrom("e", "+", "2", "-"), fc.oneof(fc.constant("<x@example.org>"), text(20)), fc.option(text(10)))
    .map(([letter, address, args]) =>
      replyPacket(letter, (w) => (args === null ? w.string(address) : w.string(address).string(args)))
    ),
  fc.uint8Array({ maxLength: 300 }).map((body) => replyPacket("b", (w) => w.bytes(body))),
  // Full chunks, past any small limit on modifications; rarely, one larger than a milter sends, up to the packet limit.
  { weight: 4, arbitrary: fc.integer({ min: 1, max: MILTER_CHUNK_SIZE }).map(longBody) },
  { weight: 1, arbitrary: fc.integer({ min: MILTER_CHUNK_SIZE, max: MAX_PACKET_LENGTH - 1 }).map(longBody) },
);

/** Bytes of a well-formed reply packet of any kind. */
const validReply = fc.oneof(verdict, edit);

/** Lengths that try the decoder: zero, one, its limit and either side, and the "negative" half of 32 bits. */
const lengthField = fc.oneof(
  fc.constantFrom(0, 1, 2, MAX_PACKET_LENGTH - 1, MAX_PACKET_LENGTH, MAX_PACKET_LENGTH + 1, 0x7fffffff, 0x80000000),
  fc.constantFrom(0xfffffffe, 0xffffffff),
  fc.nat({ max: 0x1000 }),
  fc.integer({ min: 0, max: 0xffffffff }),
);

/** A valid reply broken one way: its length, its code, cut short, a bit flipped, its NULs gone. */
const mutatedReply: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(validReply, lengthField).map(([packet, length]) => {
    const copy = packet.slice();
    new DataView(copy.buffer).setUint32(0, length);
    return copy;
  }),
  fc.tuple(validReply, fc.integer({ min: 0, max: 255 })).map(([packet, code]) => {
    const copy = packet.slice();
    copy[4] = code;
    return copy;
  }),
  fc.tuple(validReply, fc.nat()).map(([packet, cut]) => packet.subarray(0, cut % packet.length)),
  fc.tuple(validReply, fc.nat(), fc.integer({ min: 0, max: 7 })).map(([packet, at, bit]) => {
    const copy = packet.slice();
    copy[at % copy.length]! ^= 1 << bit;
    return copy;
  }),
  validReply.map((packet) => {
    const data = packet.subarray(5).filter((octet) => octet !== 0);
    return new FieldWriter().bytes(data).packet(packet[4]!);
  }),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 64 })).map(([code, data]) =>
    new FieldWriter().bytes(data).packet(code)
  ),
);

const garbage = fc.uint8Array({ minLength: 1, maxLength: 64 });

/** Split `bytes` into chunks of the given sizes (the rest in one). */
function split(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= bytes.length) break;
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  if (at < bytes.length) chunks.push(bytes.subarray(at));
  return chunks;
}

const concat = (parts: Uint8Array[]) => {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
};

/** Run `f`; any error must be a MilterProtocolError. */
function onlyProtocolErrors(f: () => void): void {
  try {
    f();
  } catch (error) {
    if (!(error instanceof MilterProtocolError)) throw error;
  }
}

/**
 * Decode the byte stream chunk by chunk, each packet through both reply
 * parsers: values or MilterProtocolErrors only, and after each chunk the
 * decoder holds no more than one packet within the limit.
 */
function decodeAndParse(chunks: Uint8Array[]): void {
  const decoder = new PacketDecoder(REPLY_CODES);
  const total = chunks.reduce((n, c) => n + c.length, 0);
  let packets = 0;
  onlyProtocolErrors(() => {
    for (const chunk of chunks) {
      decoder.push(chunk);
      for (let packet = decoder.next(); packet; packet = decoder.next()) {
        packets++;
        assert.ok(packets * 5 <= total, "more packets than the bytes can hold");
        assert.ok(packet.data.length < MAX_PACKET_LENGTH);
        onlyProtocolErrors(() => parseNegotiation(packet));
        onlyProtocolErrors(() => parseReply(packet, false));
        onlyProtocolErrors(() => parseReply(packet, true));
      }
      assert.ok(decoder.held < MAX_PACKET_LENGTH, `holds ${decoder.held}`);
    }
  });
}

describe("milter fuzz: decoder and reply parsers", () => {
  it("random bytes, in random chunks", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.integer({ min: 1, max: 300 })), (bytes, sizes) => {
        decodeAndParse(split(bytes, sizes));
      }),
      runs(300),
    );
  });

  it("valid, mutated and garbage packets mixed, in random chunks", () => {
    const stream = fc.array(fc.oneof({ weight: 2, arbitrary: validReply }, mutatedReply, garbage), { maxLength: 8 });
    fc.assert(
      fc.property(stream, fc.array(fc.integer({ min: 1, max: 70_000 })), (packets, sizes) => {
        decodeAndParse(split(concat(packets), sizes));
      }),
      runs(300),
    );
  });

  it("any code and any data straight into the parsers", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.boolean(),
        (code, data, sp) => {
          onlyProtocolErrors(() => parseNegotiation({ code, data }));
          onlyProtocolErrors(() => parseReply({ code, data }, sp));
        },
      ),
      runs(1000),
    );
  });

  it("refuses a length over the limit from the header alone, buffering none of it", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: MAX_PACKET_LENGTH + 1, max: 0xffffffff }),
        fc.constantFrom(...REPLY_CODES),
        fc.uint8Array({ maxLength: 100 }),
        (length, code, rest) => {
          const decoder = new PacketDecoder(REPLY_CODES);
          const header = new Uint8Array(5);
          new DataView(header.buffer).setUint32(0, length);
          header[4] = code;
          decoder.push(concat([header, rest]));
          assert.throws(
            () => decoder.next(),
            (e) => e instanceof MilterProtocolError && /over the limit/.test(e.message),
          );
          assert.equal(decoder.held, 0);
        },
      ),
      runs(300),
    );
  });
});

/** What the milter does when it reads a command. */
const answer: fc.Arbitrary<ScriptAnswer> = (() => {
  const replies = fc.array(
    fc.oneof({ weight: 6, arbitrary: validReply }, mutatedReply, garbage),
    { minLength: 1, maxLength: 5 },
  );
  // What end of message is meant to get: modifications, then the verdict.
  const endOfMessage = fc.tuple(fc.array(edit, { maxLength: 6 }), verdict).map(([edits, last]) => [...edits, last]);
  // More replies at once than the relay queues before it stops reading.
  const flood = fc.tuple(validReply, fc.integer({ min: 10, max: 300 })).map(([reply, n]) => Array(n).fill(reply));
  return fc.oneof(
    { weight: 4, arbitrary: replies },
    { weight: 3, arbitrary: endOfMessage },
    { weight: 1, arbitrary: flood },
    { weight: 1, arbitrary: fc.constantFrom("silent" as const, "close" as const) },
    { weight: 2, arbitrary: replies.map((send) => ({ send, thenClose: true })) },
    {
      weight: 1,
      arbitrary: fc.record({
        // A long packet trickled would take minutes: only the time limit of an answer ends it.
        send: fc.oneof(replies, fc.integer({ min: 2_000, max: MILTER_CHUNK_SIZE }).map((size) => [longBody(size)])),
        thenClose: fc.boolean(),
        trickle: fc.record({ bytes: fc.integer({ min: 1, max: 4 }), everyMs: fc.integer({ min: 5, max: 40 }) }),
      }),
    },
  );
})();

/**
 * A milter's script: answers for the n-th command of a letter (a macro's
 * letter is "D"), the default for the others. End of message, where most
 * can happen, is picked most often.
 */
const script = fc.array(
  fc.record({
    letter: fc.oneof({ weight: 4, arbitrary: fc.constant("E") }, fc.constantFrom(..."OCHMRTLNBDA")),
    nth: fc.nat({ max: 2 }),
    answer,
  }),
  { minLength: 1, maxLength: 4 },
).map((entries) => new Map(entries.map(({ letter, nth, answer }) => [`${letter}${nth}`, answer])));

const scripted = (plan: Map<string, ScriptAnswer>) => (command: SeenCommand, seen: readonly SeenCommand[]) =>
  plan.get(`${command.letter}${seen.filter((c) => c.letter === command.letter).length - 1}`);

const peerOptions = fc.record({
  version: fc.oneof({ weight: 15, arbitrary: fc.constant(6) }, fc.integer({ min: 0, max: 8 })),
  actions: fc.oneof(
    { weight: 10, arbitrary: fc.constant(ALL_ACTIONS) },
    { weight: 4, arbitrary: fc.nat({ max: ALL_ACTIONS }).map((bits) => bits & ALL_ACTIONS) },
    fc.nat(),
  ),
  protocol: fc.oneof(
    { weight: 3, arbitrary: fc.constant(0) },
    fc.nat({ max: OFFERED_PROTOCOL }).map((bits) => bits & OFFERED_PROTOCOL),
    fc.nat(),
  ),
  // Macro lists in the negotiation answer: known stages and not, names sensible and not.
  macroLists: fc.dictionary(
    fc.integer({ min: 0, max: 8 }).map(String),
    fc.oneof(fc.constantFrom("i", "{mail_addr} {rcpt_addr}", "j,{daemon_name}", ""), text(20)),
    { maxKeys: 3 },
  ),
});

const message: fc.Arbitrary<MilterMessage> = fc.record({
  recipients: fc.integer({ min: 1, max: 3 }),
  headers: fc.integer({ min: 0, max: 3 }),
  bodyBytes: fc.oneof(fc.nat({ max: 200 }), fc.constant(MILTER_CHUNK_SIZE + 10)),
}).map(({ recipients, headers, bodyBytes }) => ({
  sender: { address: "a@example.com" },
  macros: commonMacros({ hostname: "relay.test", daemonName: "smtp", queueId: "Q1", authenticatedAs: "alice" }),
  recipients: Array.from({ length: recipients }, (_, i) => ({ address: `r${i}@example.org` })),
  content: new TextEncoder().encode(
    `${Array.from({ length: headers }, (_, i) => `X-H${i}: v${i}\r\n`).join("")}\r\n${"b".repeat(bodyBytes)}`,
  ),
}));

const FINAL_KINDS = ["accept", "discard", "reject", "tempfail", "replycode"];
const STEPS = ["connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body", "eom"];
const isMilterFailure = (error: unknown) =>
  error instanceof MilterProtocolError || error instanceof MilterTimeoutError ||
  error instanceof MilterConnectionError;

/** Negotiate, CONNECT and HELO, then each message: the verdicts, or the error it ended with. */
async function converse(session: MilterSession, messages: MilterMessage[]) {
  try {
    await session.negotiate();
    const client = { hostname: "client.example", family: Family.INET, port: 4000, address: "192.0.2.7" };
    const verdicts = [await session.connect(client), await session.helo("client.example")];
    const results = [];
    for (const m of messages) results.push(await session.message(m));
    return { verdicts, results };
  } catch (error) {
    return { error };
  }
}

describe("milter fuzz: whole sessions against a fuzzed milter", () => {
  it("always settle with a verdict or a MilterError, close the connection after an error, and let nothing escape", {
    timeout: 600_000,
  }, async () => {
    // Both test runners fail a test on an escaped error too; these name the run that let it escape.
    const escaped: unknown[] = [];
    const onEscape = (error: unknown) => escaped.push(error);
    process.on("unhandledRejection", onEscape);
    process.on("uncaughtException", onEscape);
    try {
      await fc.assert(
        fc.asyncProperty(
          peerOptions,
          script,
          fc.array(message, { minLength: 1, maxLength: 2 }),
          fc.integer({ min: 100, max: 200_000 }),
          async (options, plan, messages, maxEditBytes) => {
            const peer = await startMilterPeer({ ...options, script: scripted(plan) });
            try {
              const endpoint = parseMilterEndpoint(peer.address);
              assert.ok(endpoint.kind === "inet");
              const socket = await connectTcp({ host: endpoint.host, port: endpoint.port, timeoutMs: 10_000 });
              const session = new MilterSession(socket, {
                timeouts: { commandMs: 300, messageMs: 1500 },
                maxEditBytes,
              });
              const outcome = await converse(session, messages);
              if ("error" in outcome) {
                assert.ok(isMilterFailure(outcome.error), `not a MilterError: ${String(outcome.error)}`);
                assert.ok(socket.destroyed, "the socket is left open after an error");
                await session.close(); // as a caller does after any error: settles at once
              } else {
                for (const verdict of outcome.verdicts) assert.ok(["continue", ...FINAL_KINDS].includes(verdict.kind));
                for (const result of outcome.results) {
                  assert.ok(FINAL_KINDS.includes(result.verdict.kind), result.verdict.kind);
                  assert.ok(STEPS.includes(result.step), result.step);
                }
                await session.close();
              }
              await waitUntil(() => peer.openConnections(), (n) => n === 0, { what: "the milter to see the close" });
              assert.deepEqual(escaped, []);
            } finally {
              await peer.close();
            }
          },
        ),
        runs(200),
      );
    } finally {
      process.off("unhandledRejection", onEscape);
      process.off("uncaughtException", onEscape);
    }
    assert.deepEqual(escaped, []);
  });
});
