import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyModifications } from "../../src/milter/apply.ts";
import type { MilterModification } from "../../src/milter/edits.ts";

const message = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const envelope = (content: string, recipients = ["a@example.org"]) => ({
  sender: "s@example.com",
  recipients,
  content: message(content),
});
const BASE =
  "Received: from x\r\n\tby y\r\nFrom: s@example.com\r\nX-Tag: one\r\nSubject: hi\r\nX-Tag: two\r\n\r\nbody\r\n";

function applied(modifications: MilterModification[], content = BASE) {
  return text(applyModifications(envelope(content), modifications).content);
}

describe("a milter's modifications applied to the message", () => {
  it("adds a field at the end of the header section, keeping a folded one whole", () => {
    assert.equal(
      applied([{ kind: "add-header", name: "X-Spam-Status", value: " No,\r\n\tscore=0.1" }]),
      BASE.replace("X-Tag: two\r\n", "X-Tag: two\r\nX-Spam-Status: No,\r\n\tscore=0.1\r\n"),
    );
  });

  it("inserts at an index from the top: 0 is above everything, past the end is the end", () => {
    assert.ok(
      applied([{ kind: "insert-header", index: 0, name: "X-First", value: " 1" }]).startsWith("X-First: 1\r\n"),
    );
    assert.equal(
      applied([{ kind: "insert-header", index: 1, name: "X-Second", value: " 2" }]),
      BASE.replace("From:", "X-Second: 2\r\nFrom:"),
    );
    assert.equal(
      applied([{ kind: "insert-header", index: 99, name: "X-Last", value: " z" }]),
      BASE.replace("X-Tag: two\r\n", "X-Tag: two\r\nX-Last: z\r\n"),
    );
  });

  it("changes the Nth field of a name (any case), deletes it with an empty value, adds it when there is no Nth", () => {
    assert.equal(
      applied([{ kind: "change-header", index: 2, name: "x-tag", value: " TWO" }]),
      BASE.replace("X-Tag: two", "x-tag: TWO"),
    );
    assert.equal(
      applied([{ kind: "change-header", index: 1, name: "X-Tag", value: "" }]),
      BASE.replace("X-Tag: one\r\n", ""),
    );
    assert.equal(
      applied([{ kind: "change-header", index: 3, name: "X-Tag", value: " three" }]),
      BASE.replace("X-Tag: two\r\n", "X-Tag: two\r\nX-Tag: three\r\n"),
    );
    assert.equal(applied([{ kind: "change-header", index: 3, name: "X-Tag", value: "" }]), BASE);
  });

  it("replaces the body, its bare LF and CR made CRLF, and keeps the header section", () => {
    assert.equal(
      applied([{ kind: "replace-body", body: message("one\ntwo\rthree\r\n\u00e9\n") }]),
      BASE.replace("body\r\n", "one\r\ntwo\r\nthree\r\n\u00e9\r\n"),
    );
  });

  it("changes the sender and the recipients, with or without angle brackets; domains compare without case", () => {
    const result = applyModifications(envelope(BASE, ["a@example.org", "b@Example.org"]), [
      { kind: "change-sender", address: "<bounce@example.com>" },
      { kind: "add-recipient", address: "<c@example.org>" },
      { kind: "add-recipient", address: "a@EXAMPLE.org" },
      { kind: "delete-recipient", address: "<b@example.ORG>" },
    ]);
    assert.equal(result.sender, "bounce@example.com");
    assert.deepEqual(result.recipients, ["a@example.org", "c@example.org"]);
    assert.equal(text(result.content), BASE);
  });

  it("gives a message with no body an empty line and its fields", () => {
    assert.equal(
      applied([{ kind: "add-header", name: "X-A", value: " 1" }], "Subject: s\r\n"),
      "Subject: s\r\nX-A: 1\r\n\r\n",
    );
  });
});
