/** PacketChannel's writes: what no reply answers waits for the next packet that is answered. */
import assert from "node:assert/strict";
import { Duplex } from "node:stream";
import { describe, it } from "node:test";
import { PacketChannel } from "../../src/milter/channel.ts";

/** A milter end that records each write the channel makes, and never answers. */
function recordingStream() {
  const writes: string[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Uint8Array, _encoding, done) {
      writes.push(Buffer.from(chunk).toString("latin1"));
      done();
    },
    final(done) {
      writes.push("(end)");
      done();
      this.push(null);
    },
  });
  return { stream, writes };
}

const packet = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));

describe("milter channel writes", () => {
  it("held packets go out in one write with the next that is written", async () => {
    const { stream, writes } = recordingStream();
    const channel = new PacketChannel(stream);
    await channel.hold(packet("macros;"), "header", 1000);
    await channel.hold(packet("header1;"), "header", 1000);
    await channel.hold(packet("header2;"), "header", 1000);
    assert.deepEqual(writes, []);
    await channel.write(packet("eoh;"), "eoh", 1000);
    assert.deepEqual(writes, ["macros;header1;header2;eoh;"]);
  });

  it("past 64 KiB held, they go out without waiting", async () => {
    const { stream, writes } = recordingStream();
    const channel = new PacketChannel(stream);
    const chunk = "b".repeat(40_000);
    await channel.hold(packet(chunk), "body", 1000);
    assert.equal(writes.length, 0);
    await channel.hold(packet(chunk), "body", 1000);
    assert.deepEqual(writes.map((w) => w.length), [80_000]);
  });

  it("the last packet at the end carries what was held before it", async () => {
    const { stream, writes } = recordingStream();
    const channel = new PacketChannel(stream);
    await channel.hold(packet("abort;"), "abort", 1000);
    await channel.end(packet("quit;"), 1000);
    assert.deepEqual(writes, ["abort;quit;", "(end)"]);
  });
});
