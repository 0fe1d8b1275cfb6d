/**
 * Fuzzing the SMTP parsers (src/smtp/protocol, the client's reply reader):
 * command lines and paths, the command line reader, the DATA and BDAT
 * readers, over random and mutated input. Each returns a value or its
 * documented refusal (never another exception; a hang is the runner's
 * timeout), and the invariants that make them safe hold: a parsed path
 * formats back to the same mailbox, dot-stuffing is undone exactly, a
 * message read in any chunks is the same message, and an endless line is
 * dropped at the limit rather than buffered. RELAY_FUZZ_RUNS=N scales the runs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { formatPath } from "../../src/core/address.ts";
import { toCrlf } from "../../src/core/crlf.ts";
import { encodeData } from "../../src/smtp/client/dot-stuff.ts";
import { ReplyFormatError, ReplyReader } from "../../src/smtp/client/reply-reader.ts";
import {
  ChunkReader,
  DataReader,
  type LineEvent,
  LineReader,
  MessageBuffer,
  parseBdat,
  parseCommand,
  parseMailFrom,
  parseRcptTo,
} from "../../src/smtp/protocol/index.ts";
import { concatBytes } from "../helpers/bytes.ts";
import { mutated, mutatedText, runs, trickyText } from "../helpers/fuzz.ts";

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);

/** `data` cut at random points: the same bytes in the chunks a socket might deliver. */
const chunked = (data: Uint8Array) =>
  fc.array(fc.nat({ max: data.length }), { maxLength: 8 }).map((cuts) => {
    const points = [0, ...cuts.sort((a, b) => a - b), data.length];
    return points.slice(1).map((end, i) => data.slice(points[i], end));
  });

const mailbox = fc.constantFrom(
  "a@example.com",
  '"quoted local"@example.org',
  "x.y+tag@[192.0.2.1]",
  "u@[IPv6:2001:db8::1]",
  "ü@bücher.example",
  "@relay.example:r@example.net",
);
const params = fc.constantFrom(
  "",
  " SIZE=1000",
  " BODY=8BITMIME",
  " SMTPUTF8",
  " RET=HDRS ENVID=a+2Bb",
  " NOTIFY=NEVER",
);
const mailArgs = fc.tuple(mailbox, params).map(([m, p]) => `FROM:<${m}>${p}`);
const rcptArgs = fc.tuple(mailbox, params).map(([m, p]) => `TO:<${m}>${p}`);
const pathText = fc.oneof(
  trickyText('<>@:"\\., =[]', 80),
  mutatedText(mailArgs),
  mutatedText(rcptArgs),
);

/** A refusal is a 4xx or 5xx reply with text. */
function checkRefusal(reply: { code: number; lines: readonly string[] }): void {
  assert.ok(reply.code >= 400 && reply.code < 600, String(reply.code));
  assert.ok(reply.lines.join("").length > 0);
}

describe("SMTP command and path parsing under fuzzing", () => {
  it("any command line splits into an upper-case verb and its arguments", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 100 }), (line) => {
        const { verb, args } = parseCommand(line);
        assert.equal(verb, verb.toUpperCase());
        assert.ok(line.length === verb.length || line.endsWith(args));
      }),
      runs(500),
    );
  });

  it("MAIL and RCPT arguments parse or are refused; a parsed path formats back to the same mailbox", () => {
    fc.assert(
      fc.property(pathText, fc.boolean(), (args, utf8) => {
        const from = parseMailFrom(args.replace(/^TO:/i, "FROM:"));
        if (!from.ok) checkRefusal(from.reply);
        else {
          const again = parseMailFrom(`FROM:${formatPath(from.from)} SMTPUTF8`);
          assert.ok(again.ok, formatPath(from.from));
          assert.deepEqual(again.from, from.from);
        }
        const to = parseRcptTo(args.replace(/^FROM:/i, "TO:"), utf8, "relay.example");
        if (!to.ok) checkRefusal(to.reply);
        else {
          const again = parseRcptTo(`TO:${formatPath(to.to)}`, true, "relay.example");
          assert.ok(again.ok, formatPath(to.to));
          assert.deepEqual(again.to, to.to);
        }
      }),
      runs(2000),
    );
  });

  it("BDAT arguments give a size and LAST, or undefined", () => {
    const args = fc.oneof(trickyText("0123456789 LASTlast", 30), mutatedText(fc.constantFrom("100 LAST", "0", "5")));
    fc.assert(
      fc.property(args, (text) => {
        const parsed = parseBdat(text);
        if (parsed) assert.ok(Number.isSafeInteger(parsed.size) && parsed.size >= 0);
      }),
      runs(500),
    );
  });
});

/** Every event the reader gives for the chunks, fed one by one. */
function lineEvents(reader: LineReader, chunks: readonly Uint8Array[]): LineEvent[] {
  const events: LineEvent[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let e = reader.next(); e; e = reader.next()) events.push(e);
    assert.ok(reader.buffered <= reader.maxLength + 1, `${reader.buffered} bytes buffered`);
  }
  return events;
}

describe("SMTP command line reader under fuzzing", () => {
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    mutated(fc.constantFrom("EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", "NOOP\r\n\r\nQUIT\r\n").map(bytes)),
  );

  it("gives the same lines however the bytes are chunked, buffering at most a line", () => {
    const data = input.chain((b) => fc.tuple(fc.constant(b), chunked(b), fc.integer({ min: 4, max: 64 })));
    fc.assert(
      fc.property(data, ([whole, chunks, max]) => {
        const events = lineEvents(new LineReader(max), chunks);
        assert.deepEqual(events, lineEvents(new LineReader(max), [whole]));
        for (const e of events) if (e.kind === "line") assert.ok(e.bytes.length + 2 <= max && !e.bytes.includes(13));
      }),
      runs(1000),
    );
  });

  it("a 10 MB line without CRLF is dropped at the limit, then reported as too long", () => {
    const reader = new LineReader(512);
    const chunk = new Uint8Array(64 * 1024).fill(0x41);
    for (let sent = 0; sent < 10 * 1024 * 1024; sent += chunk.length) {
      reader.push(chunk);
      assert.equal(reader.next(), undefined);
      assert.ok(reader.buffered <= 512, `${reader.buffered} bytes buffered`);
    }
    reader.push(bytes("\r\nQUIT\r\n"));
    assert.deepEqual(reader.next(), { kind: "too-long" });
    assert.deepEqual(reader.next(), { kind: "line", bytes: bytes("QUIT") });
  });
});

/** The message as the DATA reader must give it back after the client's encoding: CRLF lines, a CRLF at the end. */
function expectedMessage(message: Uint8Array): Uint8Array {
  const crlf = toCrlf(message);
  const ends = crlf.length === 0 || (crlf[crlf.length - 2] === 13 && crlf[crlf.length - 1] === 10);
  return ends ? crlf : concatBytes([crlf, bytes("\r\n")]);
}

/** Feeds chunks to a DATA or BDAT reader; returns what came after its end, or undefined before it. */
function feed(reader: { push(chunk: Uint8Array): Uint8Array | undefined }, chunks: readonly Uint8Array[]) {
  let after: Uint8Array | undefined;
  const rest: Uint8Array[] = [];
  for (const chunk of chunks) {
    if (after !== undefined) rest.push(chunk);
    else after = reader.push(chunk);
  }
  return after === undefined ? undefined : concatBytes([after, ...rest]);
}

describe("SMTP DATA and BDAT readers under fuzzing", () => {
  const message = fc.oneof(
    fc.uint8Array({ maxLength: 400 }),
    fc.array(fc.constantFrom(".", "..", ". x", "line", "", "\r", "\n", ".\r", "\r.\n"), { maxLength: 20 })
      .map((lines) => bytes(lines.join("\r\n"))),
  );

  it("dot-unstuffing undoes the client's dot-stuffing, in any chunks, and keeps what follows", () => {
    const sent = fc.tuple(message, fc.constantFrom("", "QUIT\r\n", ".\r\n")).chain(([m, next]) => {
      const wire = concatBytes([encodeData(m), bytes(next)]);
      return fc.tuple(fc.constant(m), fc.constant(next), chunked(wire));
    });
    fc.assert(
      fc.property(sent, ([m, next, chunks]) => {
        const reader = new DataReader(1 << 20, 998);
        const after = feed(reader, chunks);
        assert.ok(reader.done && after !== undefined);
        assert.deepEqual(after, bytes(next));
        const result = reader.result();
        assert.deepEqual(result.message, expectedMessage(m));
        assert.equal(result.bareEol, false);
        assert.equal(result.overflow, false);
      }),
      runs(1000),
    );
  });

  it("any bytes: the body ends only at CRLF.CRLF, and the size counts what was stored", () => {
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 400 }),
      mutated(message.map((m) => concatBytes([encodeData(m), bytes("QUIT\r\n")]))),
    );
    const data = input.chain((b) => fc.tuple(fc.constant(b), chunked(b), fc.integer({ min: 0, max: 500 })));
    fc.assert(
      fc.property(data, ([whole, chunks, maxBytes]) => {
        const reader = new DataReader(maxBytes, 998);
        const after = feed(reader, chunks);
        const end = [...whole.keys()].find((i) =>
          (i === 0 || (whole[i - 2] === 13 && whole[i - 1] === 10)) && whole[i] === 46 && whole[i + 1] === 13 &&
          whole[i + 2] === 10
        );
        assert.equal(reader.done, end !== undefined);
        if (end !== undefined) assert.deepEqual(after, whole.subarray(end + 3));
        const result = reader.result();
        assert.equal(result.overflow, result.size > maxBytes);
        assert.equal(result.message.length, Math.min(result.size, maxBytes));
      }),
      runs(1000),
    );
  });

  it("BDAT chunks of random sizes give the same bytes as one chunk, and hand back what follows", () => {
    const data = fc.tuple(fc.uint8Array({ maxLength: 400 }), fc.uint8Array({ maxLength: 20 })).chain(
      ([body, next]) => fc.tuple(fc.constant(body), fc.constant(next), chunked(concatBytes([body, next]))),
    );
    fc.assert(
      fc.property(data, ([body, next, chunks]) => {
        const message = new MessageBuffer({ maxBytes: 1 << 20, maxLineLength: 998 });
        const reader = new ChunkReader(body.length, message);
        const after = feed(reader, chunks);
        assert.deepEqual(after ?? new Uint8Array(0), body.length === 0 ? concatBytes(chunks) : next);
        assert.deepEqual(message.bytes(), body);
      }),
      runs(1000),
    );
  });
});

describe("SMTP reply parsing under fuzzing", () => {
  const valid = fc.array(
    fc.tuple(
      fc.integer({ min: 200, max: 599 }),
      fc.array(fc.constantFrom("OK", "2.1.0 fine", "", "PIPELINING"), {
        minLength: 1,
        maxLength: 3,
      }),
    ),
    { maxLength: 4 },
  ).map((replies) =>
    replies.map(([code, lines]) => lines.map((l, i) => `${code}${i === lines.length - 1 ? " " : "-"}${l}\r\n`).join(""))
      .join("")
  );

  /** Replies read from the chunks, or the ReplyFormatError the reader threw. */
  function readReplies(chunks: readonly Uint8Array[]) {
    const reader = new ReplyReader(4096);
    const replies = [];
    try {
      for (const chunk of chunks) replies.push(...reader.push(chunk));
    } catch (error) {
      assert.ok(error instanceof ReplyFormatError, String(error));
      return { replies, error: true };
    }
    return { replies, error: false };
  }

  it("gives replies with 3-digit codes, or a ReplyFormatError, the same in any chunks", () => {
    const input = fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated(valid.map(bytes)));
    fc.assert(
      fc.property(input.chain((b) => fc.tuple(fc.constant(b), chunked(b))), ([whole, chunks]) => {
        const read = readReplies(chunks);
        for (const r of read.replies) {
          assert.ok(Number.isInteger(r.code) && r.code >= 200 && r.code <= 599, String(r.code));
          if (r.enhanced) assert.equal(r.enhanced[0], String(r.code)[0]);
        }
        if (!read.error) assert.deepEqual(read, readReplies([whole]));
      }),
      runs(1000),
    );
  });

  // Finding: every piece copied all the bytes held before it; 64 kB (the default limit) trickled a byte at a time took 2 s.
  it("regression: a reply trickled a byte at a time is read in linear time", () => {
    const size = 1 << 18;
    const reader = new ReplyReader(size + 16);
    const line = bytes(`250 ${"x".repeat(size - 6)}\r\n`);
    const replies = [];
    for (let i = 0; i < line.length; i++) replies.push(...reader.push(line.subarray(i, i + 1)));
    assert.equal(replies.length, 1);
    assert.equal(replies[0]!.lines[0]!.length, size - 6);
    assert.equal(reader.pending, false);
  });

  it("an endless reply line is refused at the limit", () => {
    const reader = new ReplyReader(4096);
    assert.throws(() => {
      for (let i = 0; i < 1000; i++) reader.push(new Uint8Array(1024).fill(0x41));
    }, ReplyFormatError);
  });
});
