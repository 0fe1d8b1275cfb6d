import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseHttpResponse, type ParseState } from "../../src/core/http-response.ts";

const LIMITS = { maxHeaderBytes: 4096, maxBodyBytes: 4096 };
const parse = (text: string, eof = false): ParseState => parseHttpResponse(new TextEncoder().encode(text), LIMITS, eof);
const done = (state: ParseState) => {
  assert.equal(state.state, "done", JSON.stringify(state));
  return state as Extract<ParseState, { state: "done" }>;
};

describe("HTTP/1.1 response parser", () => {
  it("ends a response framed by Content-Length at its length, before the connection ends", () => {
    const text = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const parsed = done(parse(`${text}HTTP/1.1 200`));
    assert.equal(new TextDecoder().decode(parsed.response.body), "ok");
    assert.equal(parsed.length, text.length, "the bytes after it are not part of it");
    assert.equal(parsed.response.minorVersion, 1);
  });

  it("ends a chunked body after its trailer, and says how long it was", () => {
    const text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n";
    const parsed = done(parse(text));
    assert.equal(new TextDecoder().decode(parsed.response.body), "ok");
    assert.equal(parsed.length, text.length);
  });

  it("knows that 204 and 304 have no body, whatever the fields say (RFC 9112 6.3)", () => {
    for (const status of [204, 304]) {
      const text = `HTTP/1.1 ${status} X\r\nContent-Length: 5\r\n\r\n`;
      const parsed = done(parse(text));
      assert.equal(parsed.response.body.length, 0);
      assert.equal(parsed.length, text.length);
    }
  });

  it("reads past interim answers to the final one (RFC 9110 15.2)", () => {
    const text =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 202 Accepted\r\n" +
      "Content-Length: 0\r\n\r\n";
    const parsed = done(parse(text));
    assert.equal(parsed.response.status, 202);
    assert.equal(parsed.length, text.length);
    assert.equal(parse("HTTP/1.1 100 Continue\r\n\r\n").state, "incomplete");
  });

  it("reads an unframed body to the end of the connection, and tells HTTP/1.0 from 1.1", () => {
    assert.equal(parse("HTTP/1.0 200 OK\r\n\r\nabc").state, "incomplete");
    const parsed = done(parse("HTTP/1.0 200 OK\r\n\r\nabc", true));
    assert.equal(new TextDecoder().decode(parsed.response.body), "abc");
    assert.equal(parsed.response.minorVersion, 0);
  });
});
