import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { buildDsn, chooseBoundary, type DsnInput, type DsnRecipient } from "../../src/delivery/dsn.ts";
import { PYTHON } from "../helpers/peers.ts";

/**
 * An independent reader: Python's `email` package parses the DSN and reports
 * its structure as JSON. Folded field values are unfolded (CRLF removed).
 */
const PARSER = String.raw`
import sys, json, re, base64, email
from email.utils import parsedate_to_datetime
raw = sys.stdin.buffer.read()
msg = email.message_from_bytes(raw)
unfold = lambda v: re.sub(r'\r?\n(?=[ \t])', '', str(v))
def fields(m): return [[k, unfold(v)] for k, v in m.items()]
def b64(b): return None if b is None else base64.b64encode(b).decode()
out = {
  "multipart": msg.is_multipart(),
  "type": msg.get_content_type(),
  "reportType": msg.get_param("report-type"),
  "boundary": msg.get_boundary(),
  "headers": fields(msg),
  "defects": [type(d).__name__ for d in msg.defects],
  "parts": [],
}
for part in (msg.get_payload() if msg.is_multipart() else []):
  p = {"type": part.get_content_type(), "headers": fields(part), "cte": part.get("Content-Transfer-Encoding"),
       "defects": [type(d).__name__ for d in part.defects]}
  if p["type"] in ("message/delivery-status", "message/global-delivery-status"):
    p["blocks"] = [fields(b) for b in part.get_payload()]
  elif p["type"] == "message/rfc822":
    inner = part.get_payload(0)
    p["innerHeaders"] = fields(inner)
    p["innerBody"] = b64(inner.get_payload(decode=True))
  else:
    p["body"] = b64(part.get_payload(decode=True))
  out["parts"].append(p)
out["dateOk"] = parsedate_to_datetime(msg["Date"]).timestamp() if msg["Date"] else None
print(json.dumps(out))
`;

type Fields = [string, string][];
interface Parsed {
  multipart: boolean;
  type: string;
  reportType: string | null;
  boundary: string | null;
  headers: Fields;
  defects: string[];
  dateOk: number | null;
  parts: {
    type: string;
    headers: Fields;
    cte: string | null;
    defects: string[];
    blocks?: Fields[];
    innerHeaders?: Fields;
    innerBody?: string | null;
    body?: string | null;
  }[];
}

function parse(dsn: Uint8Array): Parsed {
  const r = spawnSync(PYTHON, ["-c", PARSER], { input: dsn, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, `python parser failed: ${r.stderr?.toString()}`);
  return JSON.parse(r.stdout.toString()) as Parsed;
}

const get = (f: Fields, name: string): string | undefined =>
  f.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
const all = (f: Fields, name: string): string[] =>
  f.filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
const names = (f: Fields): string[] => f.map(([k]) => k.toLowerCase());
const b64 = (s: string | null | undefined): Buffer => Buffer.from(s ?? "", "base64");
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

const T0 = Date.UTC(2025, 1, 13, 9, 5, 0);
const NOW = Date.UTC(2025, 1, 13, 10, 0, 0);
const ORIGINAL_HEADERS =
  "From: alice@example.com\r\nTo: bob@x.test\r\nSubject: hello\r\nMessage-ID: <m1@example.com>\r\n";
const ORIGINAL = bytes(`${ORIGINAL_HEADERS}\r\nthe body line one\r\nthe body line two\r\n`);

const failed: DsnRecipient = {
  address: "bob@x.test",
  originalRecipient: "rfc822;Bob@X.test",
  action: "failed",
  status: "5.1.1",
  diagnostic: "550 5.1.1 <bob@x.test>: no such user",
  remoteMta: "mx.x.test",
  lastAttemptAt: T0 + 60_000,
  willRetryUntil: T0 + 999_000, // must be ignored: not delayed
};
const delayed: DsnRecipient = {
  address: "carol@y.test",
  action: "delayed",
  status: "4.4.1",
  diagnostic: "451 4.4.1 try later",
  remoteMta: "mx.y.test",
  lastAttemptAt: T0 + 120_000,
  willRetryUntil: T0 + 5 * 86_400_000,
};

function input(over: Partial<DsnInput> = {}): DsnInput {
  return {
    reportingMta: "relay.example.net",
    originalSender: "alice@example.com",
    envid: "ENV-42",
    arrivalDate: T0,
    recipients: [failed, delayed],
    original: ORIGINAL,
    ret: "FULL",
    now: NOW,
    messageId: "example.net",
    ...over,
  };
}

function lines(dsn: Uint8Array): string[] {
  return Buffer.from(dsn).toString("latin1").split("\r\n");
}

describe("buildDsn: structure (read back by Python's email package)", () => {
  const dsn = buildDsn(input());
  const p = parse(dsn);

  it("is a multipart/report of delivery-status with three parts and no parse defects", () => {
    assert.equal(p.multipart, true);
    assert.equal(p.type, "multipart/report");
    assert.equal(p.reportType, "delivery-status");
    assert.deepEqual(p.parts.map((x) => x.type), ["text/plain", "message/delivery-status", "message/rfc822"]);
    assert.deepEqual(p.defects, []);
    for (const part of p.parts) assert.deepEqual(part.defects, [], part.type);
  });

  it("has the top-level header fields of a bounce", () => {
    assert.equal(get(p.headers, "From"), "Mail Delivery System <MAILER-DAEMON@relay.example.net>");
    assert.equal(get(p.headers, "To"), "alice@example.com");
    assert.equal(get(p.headers, "Subject"), "Undelivered Mail Returned to Sender");
    assert.equal(get(p.headers, "Auto-Submitted"), "auto-replied");
    assert.equal(get(p.headers, "MIME-Version"), "1.0");
    assert.match(get(p.headers, "Message-ID") ?? "", /^<[^<>@\s]+@example\.net>$/);
    assert.equal(p.dateOk, NOW / 1000);
    for (
      const name of ["from", "to", "subject", "date", "message-id", "auto-submitted", "mime-version", "content-type"]
    ) {
      assert.equal(names(p.headers).filter((n) => n === name).length, 1, `exactly one ${name}`);
    }
  });

  it("writes the per-message fields", () => {
    const [perMessage] = p.parts[1]!.blocks!;
    assert.deepEqual(perMessage, [
      ["Reporting-MTA", "dns; relay.example.net"],
      ["Original-Envelope-Id", "ENV-42"],
      ["Arrival-Date", "Thu, 13 Feb 2025 09:05:00 +0000"],
    ]);
  });

  it("writes one block per recipient with the fields that apply", () => {
    const blocks = p.parts[1]!.blocks!;
    assert.equal(blocks.length, 3);
    assert.deepEqual(blocks[1], [
      ["Original-Recipient", "rfc822; Bob@X.test"],
      ["Final-Recipient", "rfc822; bob@x.test"],
      ["Action", "failed"],
      ["Status", "5.1.1"],
      ["Remote-MTA", "dns; mx.x.test"],
      ["Diagnostic-Code", "smtp; 550 5.1.1 <bob@x.test>: no such user"],
      ["Last-Attempt-Date", "Thu, 13 Feb 2025 09:06:00 +0000"],
    ]);
    assert.deepEqual(blocks[2], [
      ["Final-Recipient", "rfc822; carol@y.test"],
      ["Action", "delayed"],
      ["Status", "4.4.1"],
      ["Remote-MTA", "dns; mx.y.test"],
      ["Diagnostic-Code", "smtp; 451 4.4.1 try later"],
      ["Last-Attempt-Date", "Thu, 13 Feb 2025 09:07:00 +0000"],
      ["Will-Retry-Until", "Tue, 18 Feb 2025 09:05:00 +0000"],
    ]);
  });

  it("explains each recipient and the remote reply in the text part", () => {
    const text = b64(p.parts[0]!.body).toString("utf8");
    assert.match(text, /bob@x\.test/);
    assert.match(text, /mx\.x\.test said: 550 5\.1\.1 <bob@x\.test>: no such user/);
    assert.match(text, /carol@y\.test/);
    assert.match(text, /451 4\.4\.1 try later/);
    assert.match(text, /Tue, 18 Feb 2025 09:05:00 \+0000/);
  });

  it("returns the whole original as message/rfc822", () => {
    const third = p.parts[2]!;
    assert.equal(get(third.innerHeaders!, "Message-ID"), "<m1@example.com>");
    assert.equal(b64(third.innerBody).toString(), "the body line one\r\nthe body line two\r\n");
  });

  it("omits optional fields that are not given", () => {
    const q = parse(buildDsn(input({
      envid: undefined,
      recipients: [{ address: "d@z.test", action: "failed", status: "5.0.0" }],
    })));
    const [perMessage, rcpt] = q.parts[1]!.blocks!;
    assert.deepEqual(names(perMessage!), ["reporting-mta", "arrival-date"]);
    assert.deepEqual(rcpt, [["Final-Recipient", "rfc822; d@z.test"], ["Action", "failed"], ["Status", "5.0.0"]]);
  });

  it("types a diagnostic that is not an SMTP reply as our own", () => {
    const q = parse(
      buildDsn(
        input({ recipients: [{ ...failed, diagnostic: "connect to mx.x.test[192.0.2.1]:25: Connection refused" }] }),
      ),
    );
    assert.equal(
      get(q.parts[1]!.blocks![1]!, "Diagnostic-Code"),
      "X-Relay; connect to mx.x.test[192.0.2.1]:25: Connection refused",
    );
  });
});

describe("buildDsn: subject follows the actions", () => {
  const subjectOf = (recipients: DsnRecipient[]) => get(parse(buildDsn(input({ recipients }))).headers, "Subject");
  it("failure, delay, success, and failure wins in a mix", () => {
    assert.equal(subjectOf([failed]), "Undelivered Mail Returned to Sender");
    assert.equal(subjectOf([delayed]), "Delivery Status Notification (Delay)");
    assert.equal(
      subjectOf([{ address: "e@z.test", action: "delivered", status: "2.0.0" }]),
      "Delivery Status Notification (Success)",
    );
    assert.equal(subjectOf([delayed, failed]), "Undelivered Mail Returned to Sender");
  });
});

describe("buildDsn: the returned original", () => {
  it("RET=HDRS returns only the header section as text/rfc822-headers", () => {
    const dsn = buildDsn(input({ ret: "HDRS" }));
    const p = parse(dsn);
    assert.equal(p.parts[2]!.type, "text/rfc822-headers");
    assert.equal(b64(p.parts[2]!.body).toString(), ORIGINAL_HEADERS);
    assert.equal(Buffer.from(dsn).includes("the body line"), false, "no body text anywhere in the DSN");
  });

  it("an original over the limit falls back to its headers, and says so", () => {
    const big = bytes(`${ORIGINAL_HEADERS}\r\n${"x".repeat(70)}\r\n`.repeat(1) + `${"y".repeat(76)}\r\n`.repeat(2000));
    assert.ok(big.length > 100 * 1024);
    const dsn = buildDsn(input({ original: big }));
    const p = parse(dsn);
    assert.equal(p.parts[2]!.type, "text/rfc822-headers");
    assert.equal(b64(p.parts[2]!.body).toString(), ORIGINAL_HEADERS);
    assert.ok(dsn.length < 10_000, `DSN is ${dsn.length} bytes`);
    assert.match(b64(p.parts[0]!.body).toString(), /Only the headers/);
  });

  it("maxOriginalBytes is the limit: at it the whole message, one byte less the headers", () => {
    const at = parse(buildDsn(input({ maxOriginalBytes: ORIGINAL.length })));
    assert.equal(at.parts[2]!.type, "message/rfc822");
    const below = parse(buildDsn(input({ maxOriginalBytes: ORIGINAL.length - 1 })));
    assert.equal(below.parts[2]!.type, "text/rfc822-headers");
  });

  it("an 8-bit body survives byte for byte, labelled 8bit", () => {
    const body = Buffer.concat([Buffer.from("Grüße, 日本語\r\nlatin-1 caf"), Buffer.from([0xe9]), Buffer.from("\r\n")]);
    const original = Buffer.concat([
      Buffer.from(
        `${ORIGINAL_HEADERS}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`,
      ),
      body,
    ]);
    const dsn = buildDsn(input({ original }));
    const p = parse(dsn);
    assert.equal(p.parts[2]!.type, "message/rfc822");
    assert.equal(p.parts[2]!.cte, "8bit");
    assert.equal(get(p.headers, "Content-Transfer-Encoding"), "8bit");
    assert.deepEqual(b64(p.parts[2]!.innerBody), body);
    assert.ok(Buffer.from(dsn).includes(original), "original bytes appear unchanged");
  });

  it("a 7-bit DSN is not labelled 8bit", () => {
    const p = parse(buildDsn(input()));
    assert.equal(get(p.headers, "Content-Transfer-Encoding"), undefined);
    assert.equal(p.parts[2]!.cte, "7bit");
  });

  it("an original with LF line ends is returned with CRLF", () => {
    const dsn = buildDsn(input({ original: bytes("Subject: lf\n\nline one\nline two\n") }));
    assert.ok(Buffer.from(dsn).includes("Subject: lf\r\n\r\nline one\r\nline two\r\n"));
  });

  it("an original with an over-long line or NUL is not returned whole", () => {
    for (const body of [`${"z".repeat(1500)}\r\n`, "nul\u0000here\r\n"]) {
      const dsn = buildDsn(input({ original: bytes(`${ORIGINAL_HEADERS}\r\n${body}`) }));
      const p = parse(dsn);
      assert.equal(p.parts[2]!.type, "text/rfc822-headers");
      assert.equal(b64(p.parts[2]!.body).toString(), ORIGINAL_HEADERS);
      assert.equal(Buffer.from(dsn).includes(0), false);
    }
  });
});

describe("buildDsn: wire rules", () => {
  const longWord = "A".repeat(5000);
  const longWords = Array.from({ length: 800 }, (_, i) => `word${i}`).join(" ");
  const cases: [string, DsnInput][] = [
    ["plain", input()],
    ["LF-only original", input({ original: bytes("Subject: x\n\nbody\nmore\n") })],
    ["bare CR in original", input({ original: bytes("Subject: x\r\n\r\nbody\rmore\r\n") })],
    [
      "long diagnostics",
      input({
        recipients: [{ ...failed, diagnostic: `550 ${longWord}` }, { ...delayed, diagnostic: `451 ${longWords}` }],
      }),
    ],
    [
      "long header line in original, HDRS",
      input({ ret: "HDRS", original: bytes(`X-Long: ${"h".repeat(2000)}\r\n\r\nbody\r\n`) }),
    ],
    [
      "UTF-8 everywhere",
      input({
        originalSender: "álice@exämple.com",
        recipients: [{ ...failed, address: "bøb@x.test", diagnostic: "550 ünknown ☃" }],
      }),
    ],
  ];

  for (const [name, dsnInput] of cases) {
    it(`${name}: CRLF only, no line over 998 octets, no defects`, () => {
      const dsn = buildDsn(dsnInput);
      for (let i = 0; i < dsn.length; i++) {
        if (dsn[i] === 10) assert.equal(dsn[i - 1], 13, `bare LF at ${i}`);
        if (dsn[i] === 13) assert.equal(dsn[i + 1], 10, `bare CR at ${i}`);
      }
      assert.ok(dsn.length >= 2 && dsn[dsn.length - 2] === 13 && dsn[dsn.length - 1] === 10, "ends with CRLF");
      for (const line of lines(dsn)) assert.ok(Buffer.byteLength(line, "latin1") <= 998, `line of ${line.length}`);
      const p = parse(dsn);
      assert.deepEqual(p.defects, []);
      assert.equal(p.parts.length, 3);
      for (const part of p.parts) assert.deepEqual(part.defects, [], part.type);
    });
  }

  it("a long diagnostic is folded (unfolding gives the text back) and cut at 2,000 characters", () => {
    const dsn = buildDsn(input({ recipients: [{ ...delayed, diagnostic: `451 ${longWords}` }] }));
    const code = get(parse(dsn).parts[1]!.blocks![1]!, "Diagnostic-Code") ?? "";
    assert.equal(code, `smtp; ${`451 ${longWords}`.slice(0, 1997)}...`);
    assert.ok(lines(dsn).filter((l) => l.startsWith(" word")).length > 10, "folded into many lines");
    assert.ok(lines(dsn).every((l) => !l.startsWith(" word") || l.length <= 78), "folded near 78 columns");
  });

  it("the boundary occurs only as the boundary", () => {
    const first = buildDsn(input());
    const b1 = parse(first).boundary!;
    // An original that carries the first DSN (and so its boundary) inside it.
    const dsn = buildDsn(
      input({ original: Buffer.concat([bytes(`${ORIGINAL_HEADERS}\r\n--${b1}\r\n${b1}\r\n`), first]) }),
    );
    const b = parse(dsn).boundary!;
    assert.ok(b.length > 0);
    const text = Buffer.from(dsn).toString("latin1");
    assert.equal(text.split(b).length - 1, 5, "parameter + 3 delimiters + close delimiter");
    assert.equal(lines(dsn).filter((l) => l === `--${b}`).length, 3);
    assert.equal(lines(dsn).filter((l) => l === `--${b}--`).length, 1);
  });

  it("a boundary that occurs in a body is not used", () => {
    const first = chooseBoundary("seed", []);
    const second = chooseBoundary("seed", [bytes(`text ${first} text`)]);
    assert.notEqual(second, first);
    const third = chooseBoundary("seed", [bytes(first), bytes(`--${second}--`)]);
    assert.ok(third !== first && third !== second);
    assert.match(first, /^[=_a-z0-9-]{1,70}$/, "RFC 2046 bchars, at most 70");
  });

  it("the delivery-status part stays 7-bit; a UTF-8 address uses the RFC 6533 utf-8 type", () => {
    const dsn = buildDsn(input({ recipients: [{ ...failed, address: "bøb+x@x.test", diagnostic: "550 ünknown" }] }));
    const p = parse(dsn);
    const rcpt = p.parts[1]!.blocks![1]!;
    assert.equal(get(rcpt, "Final-Recipient"), "utf-8; b\\x{F8}b\\x{2B}x@x.test");
    assert.equal(get(rcpt, "Diagnostic-Code"), "smtp; 550 ?nknown");
    assert.equal(p.parts[0]!.cte, "base64");
    assert.match(b64(p.parts[0]!.body).toString("utf8"), /bøb\+x@x\.test/);
  });
});

describe("buildDsn: nothing from a remote reply becomes a header", () => {
  const evil =
    "550 5.1.1 no such user\r\nX-Injected: yes\r\n\r\nFinal-Recipient: rfc822; evil@attacker.test\nBcc: victim@x.test\r\u0000\u0085\u2028X-Also: no";
  const dsn = buildDsn(input({
    originalSender: "alice@example.com\r\nBcc: victim@x.test",
    recipients: [{
      ...failed,
      diagnostic: evil,
      remoteMta: "mx.x.test\r\nX-Evil: 1",
      address: "bob@x.test\nX-Addr: 1",
    }],
  }));
  const p = parse(dsn);

  it("adds no header field and no recipient block", () => {
    for (const fields of [p.headers, ...p.parts.map((x) => x.headers), ...p.parts[1]!.blocks!]) {
      for (const n of ["x-injected", "x-evil", "x-also", "x-addr", "bcc"]) {
        assert.ok(!names(fields).includes(n), `${n} injected`);
      }
    }
    assert.equal(p.parts[1]!.blocks!.length, 2, "one per-message and one recipient block");
    assert.deepEqual(all(p.parts[1]!.blocks![1]!, "Final-Recipient"), ["rfc822; bob@x.test X-Addr: 1"]);
    assert.deepEqual(p.parts.map((x) => x.type), ["text/plain", "message/delivery-status", "message/rfc822"]);
  });

  it("keeps the reply text on one logical line without control characters", () => {
    const code = get(p.parts[1]!.blocks![1]!, "Diagnostic-Code") ?? "";
    assert.ok(code.startsWith("smtp; 550 5.1.1 no such user X-Injected: yes Final-Recipient:"), code);
    assert.doesNotMatch(code, /[\x00-\x1f\x7f-\uffff]/);
    assert.equal(get(p.headers, "To"), "alice@example.com Bcc: victim@x.test");
    assert.equal(Buffer.from(dsn).includes(0), false, "no NUL anywhere");
  });

  it("the text part does not break lines at the injected line ends either", () => {
    const text = b64(p.parts[0]!.body).toString("utf8");
    assert.doesNotMatch(text, /^X-Injected/m);
    assert.doesNotMatch(text, /[\u0000\u0085\u2028]/);
  });
});

describe("buildDsn: input rules", () => {
  it("refuses an empty sender, no recipients, or a malformed status", () => {
    assert.throws(() => buildDsn(input({ originalSender: "" })), /sender must not be empty/);
    assert.throws(() => buildDsn(input({ originalSender: " \r\n" })), /sender must not be empty/);
    assert.throws(() => buildDsn(input({ recipients: [] })), /at least one recipient/);
    assert.throws(() => buildDsn(input({ recipients: [{ ...failed, status: "550" }] })), /"550"/);
    assert.throws(() => buildDsn(input({ recipients: [{ ...failed, status: "5.1.1\r\nX: y" }] })), /RFC 3463/);
  });

  it("is deterministic: the same input gives the same bytes; a different time a different Message-ID", () => {
    assert.deepEqual(buildDsn(input()), buildDsn(input()));
    const id = (now: number) => get(parse(buildDsn(input({ now }))).headers, "Message-ID");
    assert.notEqual(id(NOW), id(NOW + 1));
  });
});
