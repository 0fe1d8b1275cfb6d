/**
 * Fuzzing the HTTP API's send body validation (src/http/message-schema.ts)
 * the way POST /v1/messages runs it: JSON picked as raw or structured by
 * isRawRequest, then v.safeParse. Over any JSON value and over mutations of
 * valid bodies it returns a result (never throws, never hangs: the runner's
 * timeout), and what it accepts holds addresses the SMTP parser accepts.
 * RELAY_FUZZ_RUNS=N scales the run counts (test/helpers/fuzz.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import * as v from "valibot";
import { parseMailbox } from "../../src/core/address.ts";
import {
  extractAddress,
  isRawRequest,
  parseNameAddress,
  rawMessageSchema,
  structuredMessageSchema,
} from "../../src/http/message-schema.ts";
import { mutatedText, runs, trickyText } from "../helpers/fuzz.ts";

const address = fc.constantFrom("a@example.com", "First.Last@mail.example.org", '"q u"@x.test', "ü@bücher.example");
const nameAddress = fc.oneof(
  address,
  fc.tuple(fc.constantFrom("Ann", '"Doe, J"', "Zoë", ""), address).map(([name, addr]) => `${name} <${addr}>`),
);

const rawBody = fc.record({
  mail_from: fc.oneof(fc.constant(""), address),
  rcpt_to: fc.array(address, { minLength: 1, maxLength: 3 }),
  raw: fc.constantFrom("Subject: hi\r\n\r\nbody\r\n", "From: a@example.com\n\nx"),
  tags: fc.option(fc.array(fc.constantFrom("a", "news"), { maxLength: 2 }), { nil: undefined }),
  send_at: fc.option(fc.constant("2030-01-01T09:00:00Z"), { nil: undefined }),
}, { requiredKeys: ["mail_from", "rcpt_to", "raw"] });

const structuredBody = fc.record({
  from: nameAddress,
  to: fc.array(nameAddress, { maxLength: 3 }),
  subject: fc.constantFrom("hi", ""),
  text: fc.constantFrom("hello", "line\nline"),
  headers: fc.option(fc.constant({ "X-Tag": "1" }), { nil: undefined }),
  attachments: fc.option(fc.constant([{ filename: "a.txt", content: "aGk=" }]), { nil: undefined }),
}, { requiredKeys: ["from"] });

/** What the route does with a parsed JSON body, up to its first use of the result. */
function validate(json: unknown): v.SafeParseResult<typeof rawMessageSchema | typeof structuredMessageSchema> {
  const isRaw = isRawRequest(json);
  const result = v.safeParse(isRaw ? rawMessageSchema : structuredMessageSchema, json, { abortEarly: false });
  if (result.success) {
    const output = result.output as Record<string, unknown>;
    const addresses = isRaw
      ? (output.rcpt_to as string[])
      : [output.from, ...(output.to as string[])].map((text) => extractAddress(text as string));
    for (const a of addresses) assert.ok(parseMailbox(a, { utf8: true }).ok, `accepted a bad address ${a}`);
  } else {
    assert.ok(result.issues.length > 0);
  }
  return result;
}

/** JSON text of a valid body, mutated, parsed back when it still is JSON. */
const mutatedJson = (body: fc.Arbitrary<unknown>) =>
  mutatedText(body.map((b) => JSON.stringify(b))).map((text) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  });

describe("HTTP send body validation under fuzzing", () => {
  it("any JSON value gets a result", () => {
    fc.assert(fc.property(fc.jsonValue(), (json) => void validate(json)), runs(300));
  });

  it("valid bodies are accepted, and mutations of them get a result", () => {
    fc.assert(fc.property(fc.oneof(rawBody, structuredBody), (body) => assert.ok(validate(body).success)), runs(100));
    fc.assert(fc.property(mutatedJson(fc.oneof(rawBody, structuredBody)), (json) => void validate(json)), runs(500));
  });

  it("a parsed Name <address> formats back to one that parses the same", () => {
    const text = fc.oneof(nameAddress, trickyText(' <>"\\@,\t', 40), mutatedText(nameAddress));
    fc.assert(
      fc.property(text, (input) => {
        const parsed = parseNameAddress(input);
        if (typeof parsed === "string") return;
        const quoted = `"${parsed.name.replace(/(["\\])/g, "\\$1")}" <${parsed.address}>`;
        assert.deepEqual(parseNameAddress(quoted), parsed);
      }),
      runs(500),
    );
  });

  // Finding: the angle-address regex backtracked cubically on runs of white space (10 s for 4 kB).
  it("regression: white space around an unclosed < is refused at once", () => {
    const blank = " ".repeat(20_000);
    assert.equal(typeof parseNameAddress(`${blank}<${blank}`), "string");
    assert.equal(typeof parseNameAddress(`${blank}x`), "string");
    const result = validate({ from: `Ann${blank}<a@example.com${blank}`, to: ["b@example.com"] });
    assert.equal(result.success, false);
  });
});
