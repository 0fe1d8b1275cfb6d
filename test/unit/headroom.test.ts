import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isSole, prepend, withHeadroom } from "../../src/core/headroom.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("headroom: header fields written in front of a message in place", () => {
  it("prepends in place while there is room, in the same buffer, and the result is the buffer's only message", () => {
    const message = withHeadroom(5, 16);
    message.set(bytes("body!"));
    assert.ok(isSole(message));
    const once = prepend(message, bytes("B: 2\r\n"));
    assert.equal(text(once), "B: 2\r\nbody!");
    assert.equal(once.buffer, message.buffer, "no copy");
    assert.equal(once.byteOffset, 10);
    assert.ok(isSole(once));
    assert.ok(!isSole(message), "the old view is no longer the message");
    const twice = prepend(once, bytes("A: 1\r\n"));
    assert.equal(text(twice), "A: 1\r\nB: 2\r\nbody!");
    assert.equal(twice.buffer, message.buffer);
  });

  it("copies once, into a buffer with room, when there is not room enough or the bytes are not its own", () => {
    const tight = withHeadroom(1, 2);
    tight.set(bytes("x"));
    const grown = prepend(tight, bytes("long: header\r\n"));
    assert.equal(text(grown), "long: header\r\nx");
    assert.notEqual(grown.buffer, tight.buffer);
    assert.ok(isSole(grown));
    const foreign = bytes("plain");
    const out = prepend(foreign, bytes("H: v\r\n"));
    assert.equal(text(out), "H: v\r\nplain");
    assert.equal(text(foreign), "plain", "the caller's bytes are left as they were");
    assert.ok(isSole(out));
  });

  it("gives each message a buffer of its own, never a slice of a shared pool, as a plain byte array", () => {
    const sizes = [0, 1, 100, 4095, 70_000];
    const messages = sizes.map((size) => withHeadroom(size, 16));
    messages.forEach((message, i) => {
      assert.equal(message.byteOffset, 16);
      assert.equal(message.buffer.byteLength, 16 + sizes[i]!, "the buffer holds the headroom and this message only");
      assert.ok(message.buffer instanceof ArrayBuffer);
      assert.equal(Object.getPrototypeOf(message), Uint8Array.prototype, "slice() copies, as on any Uint8Array");
      assert.ok(isSole(message));
    });
    assert.equal(new Set(messages.map((message) => message.buffer)).size, sizes.length);
  });

  it("a view that does not reach the end of its buffer, or starts elsewhere, is not the buffer's only message", () => {
    const message = withHeadroom(4, 8);
    assert.ok(!isSole(message.subarray(0, 3)));
    assert.ok(!isSole(message.subarray(1)));
    assert.ok(!isSole(new Uint8Array(8)), "a plain array was not made here");
  });
});
