import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { withHeadroom } from "../../src/core/headroom.ts";
import {
  hasHeader,
  headerSection,
  headerSectionEnd,
  headerValues,
  prependFields,
  splitMessage,
} from "../../src/core/header-section.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);
const octets = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const shown = (m: Uint8Array) => JSON.stringify(new TextDecoder("latin1").decode(m));

/** Seeded (mulberry32), so that a failure can be replayed. */
function random(seed: number): (n: number) => number {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Short messages made of what header reading turns on: CR, LF, blanks, ":", names in pieces and cases, UTF-8 and a lone high octet. */
function messages(seed: number, count: number): Uint8Array[] {
  const next = random(seed);
  const pieces = [
    "Date",
    "DATE",
    "date",
    "Da",
    "te",
    "From",
    "-",
    ":",
    ":",
    " ",
    "\t",
    "\r\n",
    "\r\n",
    "\r",
    "\n",
    "x",
    "\xc4",
    "\xc3\xa0",
  ];
  return Array.from({ length: count }, () => {
    let text = "";
    for (let k = next(12); k >= 0; k--) text += pieces[next(pieces.length)];
    return octets(text);
  });
}

/**
 * The header fields as a plain reading of the text finds them: lines split
 * at LF (a CR before it dropped), a line that starts with a blank joined to
 * the field above, the first empty line the end; the name is what comes
 * before the colon without blanks, ASCII letters lowered.
 */
function referenceFields(message: Uint8Array): { name: string; value: string }[] {
  const lines = new TextDecoder().decode(message).split("\n");
  const raw: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = i < lines.length - 1 && lines[i]!.endsWith("\r") ? lines[i]!.slice(0, -1) : lines[i]!;
    if (line === "" && i < lines.length - 1) break;
    if (line === "") continue;
    if ((line[0] === " " || line[0] === "\t") && raw.length > 0) raw[raw.length - 1] += line;
    else raw.push(line);
  }
  return raw.flatMap((field) => {
    const colon = field.indexOf(":");
    if (colon < 0) return [];
    return [{
      name: field.slice(0, colon).replace(/[ \t\r]/g, "").replace(/[A-Z]/g, (c) => c.toLowerCase()),
      value: field.slice(colon + 1),
    }];
  });
}

/** Where the body starts, found byte by byte: the first line that is empty (LF or CRLF alone). */
function byteByByte(m: Uint8Array): number {
  for (let i = 0; i < m.length; i++) {
    if (m[i] === 10) return i + 1;
    if (m[i] === 13 && m[i + 1] === 10) return i + 2;
    while (i < m.length && m[i] !== 10) i++;
  }
  return m.length;
}

describe("headerSectionEnd", () => {
  it("is the offset just after the empty line", () => {
    const m = "Subject: a\r\nFrom: b@x.test\r\n\r\nbody\r\n";
    assert.equal(headerSectionEnd(bytes(m)), m.indexOf("body"));
  });

  it("finds the first empty line, not a later one in the body", () => {
    const m = "Subject: a\r\n\r\npara 1\r\n\r\npara 2\r\n";
    assert.equal(headerSectionEnd(bytes(m)), "Subject: a\r\n\r\n".length);
  });

  it("an empty line at the very end (no body) ends the section at the length", () => {
    const m = bytes("Subject: a\r\n\r\n");
    assert.equal(headerSectionEnd(m), m.length);
  });

  it("no empty line at all: the whole message is header", () => {
    assert.equal(
      headerSectionEnd(bytes("Subject: a\r\nFrom: b@x.test\r\n")),
      "Subject: a\r\nFrom: b@x.test\r\n".length,
    );
    assert.equal(headerSectionEnd(bytes("Subject: a")), 10);
    assert.equal(headerSectionEnd(bytes("")), 0);
  });

  it("a message that starts with the empty line has an empty header section", () => {
    assert.equal(headerSectionEnd(bytes("\r\nSubject: in the body\r\n")), 2);
    assert.equal(headerSectionEnd(bytes("\r\n")), 2);
    assert.equal(headerSectionEnd(bytes("\nSubject: in the body\r\n")), 1);
  });

  // DKIM signers and receivers read a bare LF as a line end, so the body starts at the first empty
  // line of either kind: ingress, signing and DSNs must all see the same header section.
  it("a bare LF ends a line, so LF LF ends the section; a bare CR does not end a line", () => {
    assert.equal(headerSectionEnd(bytes("Subject: a\n\nbody\r\n\r\nrest")), "Subject: a\n\n".length);
    assert.equal(headerSectionEnd(bytes("Subject: a\r\n\nbody")), "Subject: a\r\n\n".length);
    assert.equal(headerSectionEnd(bytes("Subject: a\n\r\nbody")), "Subject: a\n\r\n".length);
    assert.equal(headerSectionEnd(bytes("Subject: a\r\r\nbody\r\n\r\n")), "Subject: a\r\r\nbody\r\n\r\n".length);
  });

  it("is where a byte-by-byte reading and splitMessage put the body", () => {
    for (const m of messages(1, 20_000)) {
      assert.equal(headerSectionEnd(m), byteByByte(m), shown(m));
      assert.equal(splitMessage(m).bodyStart, byteByByte(m), shown(m));
    }
  });
});

describe("headerSection", () => {
  it("is the fields with their line ends, without the empty line", () => {
    assert.equal(str(headerSection(bytes("A: 1\r\nB: 2\r\n\r\nbody\r\n"))), "A: 1\r\nB: 2\r\n");
    assert.equal(str(headerSection(bytes("A: 1\n\nbody\r\n"))), "A: 1\n");
    assert.equal(str(headerSection(bytes("A: 1\r\n\r\n"))), "A: 1\r\n");
    assert.equal(str(headerSection(bytes("A: 1\r\n"))), "A: 1\r\n", "no empty line: all of it");
    assert.equal(headerSection(bytes("\r\nbody")).length, 0);
  });
});

describe("splitMessage", () => {
  it("finds the fields and the body in one pass: continuation lines, a field without a colon, no empty line", () => {
    const message = octets("From: a\r\n\tb\r\nbogus\r\nTo:c");
    const parts = splitMessage(message);
    assert.deepEqual(parts.fields.map((f) => f.name), ["from", "bogus", "to"]);
    assert.equal(parts.bodyStart, message.length);
  });

  it("gives each field's octets without its final line break, and its colon", () => {
    const message = octets("Sub ject : x\r\n y\nTo: z\r\r\n\nbody");
    const [subject, to] = splitMessage(message).fields;
    assert.deepEqual(subject, { name: "subject", start: 0, colon: 9, end: "Sub ject : x\r\n y".length });
    assert.deepEqual(to, {
      name: "to",
      start: "Sub ject : x\r\n y\n".length,
      colon: "Sub ject : x\r\n y\nTo".length,
      end: "Sub ject : x\r\n y\nTo: z\r".length,
    });
  });
});

describe("hasHeader", () => {
  const msg = bytes(
    "Received: by x\r\nSUBJECT: hi\r\nmessage-id : <1@x>\r\nX-Folded: a\r\n Date: not a field\r\n\r\nDate: in the body\r\nFrom: body\r\n",
  );

  it("is case-insensitive on the field name and allows space before the colon", () => {
    assert.ok(hasHeader(msg, "Subject"));
    assert.ok(hasHeader(msg, "subject"));
    assert.ok(hasHeader(msg, "Message-ID"));
    assert.ok(hasHeader(msg, "received"), "the first line counts");
  });

  it("does not match text of the body", () => {
    assert.ok(!hasHeader(msg, "Date"));
    assert.ok(!hasHeader(msg, "From"));
    assert.ok(!hasHeader(bytes("Subject: a\n\nDate: in the body\r\n"), "Date"), "after an empty line of a bare LF");
  });

  it("does not match a continuation line, a longer field name or a line without a colon", () => {
    assert.ok(!hasHeader(msg, "Date"), "' Date:' is a folded continuation");
    assert.ok(!hasHeader(msg, "X"));
    assert.ok(!hasHeader(msg, "Message"));
    assert.ok(!hasHeader(bytes("X-Subject: a\r\n\r\n"), "Subject"));
    assert.ok(!hasHeader(bytes("Date\r\n\r\n"), "Date"));
  });

  it("works without a body and without an empty line, and after a bare LF", () => {
    assert.ok(hasHeader(bytes("Date: now\r\n"), "date"));
    assert.ok(hasHeader(bytes("Date: now"), "date"));
    assert.ok(hasHeader(bytes("Date: now\r\n\r\n"), "DATE"));
    assert.ok(hasHeader(bytes("Subject: a\nDate: now\r\n\r\n"), "Date"));
  });

  it("an empty header section has no fields", () => {
    assert.ok(!hasHeader(bytes("\r\nDate: now\r\n"), "Date"));
  });

  it("agrees with the plain reading of the fields", () => {
    let found = 0;
    for (const m of messages(2, 20_000)) {
      const names = referenceFields(m).map((f) => f.name);
      for (const name of ["Date", "DATE", "D", "Da-te", "From"]) {
        const expected = names.includes(name.toLowerCase());
        if (expected) found++;
        assert.equal(hasHeader(m, name), expected, `${name} in ${shown(m)}`);
      }
    }
    assert.ok(found > 500, `only ${found} of the cases have the field`);
  });
});

describe("headerValues", () => {
  it("gives the values of the fields of one name, unfolded, as UTF-8, top to bottom", () => {
    const m = bytes("From: a@x.test\r\nSubject: é\r\n  è\r\nfrom : b@y.test\n\tc\r\n\r\nFrom: body@z.test\r\n");
    assert.deepEqual(headerValues(m, "from"), [" a@x.test", " b@y.test\tc"]);
    assert.deepEqual(headerValues(m, "subject"), [" é  è"]);
    assert.deepEqual(headerValues(m, "to"), []);
  });

  it("agrees with the plain reading of the fields", () => {
    let found = 0;
    for (const m of messages(3, 20_000)) {
      const fields = referenceFields(m);
      for (const name of ["date", "from", "da-te"]) {
        const expected = fields.filter((f) => f.name === name).map((f) => f.value);
        found += expected.length;
        assert.deepEqual(headerValues(m, name), expected, `${name} in ${shown(m)}`);
      }
    }
    assert.ok(found > 500, `only ${found} values found`);
  });

  it("reads a long header without colons line by line, once", () => {
    const m = bytes(`${"no colon on this line\r\n".repeat(100_000)}From: a@sender.test\r\n\r\n`);
    assert.deepEqual(headerValues(m, "from"), [" a@sender.test"]);
  });
});

describe("prependFields", () => {
  it("adds the fields, each with a CRLF, before the message, and is a no-op without fields", () => {
    const m = bytes("Subject: a\r\n\r\nbody");
    assert.equal(
      str(prependFields(m, ["Received: from x", "X-A: 1"])),
      "Received: from x\r\nX-A: 1\r\nSubject: a\r\n\r\nbody",
    );
    assert.equal(prependFields(m, []), m);
  });

  it("respects a message that is a view into a larger buffer", () => {
    const big = bytes("JUNKSubject: a\r\n\r\nbodyJUNK");
    const view = big.subarray(4, big.length - 4);
    assert.equal(str(prependFields(view, ["X: 1"])), "X: 1\r\nSubject: a\r\n\r\nbody");
  });

  it("writes in place in front of a message with headroom", () => {
    const text = bytes("Subject: a\r\n\r\nbody");
    const m = withHeadroom(text.length);
    m.set(text);
    const out = prependFields(m, ["X: 1"]);
    assert.equal(out.buffer, m.buffer);
    assert.equal(str(out), "X: 1\r\nSubject: a\r\n\r\nbody");
  });
});
