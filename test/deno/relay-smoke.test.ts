// Deno smoke: the relay's source runs under Deno (`deno run src/main.ts`),
// answers on SMTP and HTTP, and shuts down cleanly on SIGTERM.
// Run by `npm test` (scripts/test.mjs) and `deno task test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { runRelay, startRelay } from "../helpers/relay-process.ts";

/** The first line the SMTP listener sends. */
function smtpBanner(port: number): Promise<string> {
  return new Promise((done, fail) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no SMTP banner on port ${port} within 5 s`)));
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\r\n");
      if (end >= 0) {
        socket.end("QUIT\r\n");
        done(text.slice(0, end));
      }
    });
    socket.on("error", fail);
  });
}

test("deno: relay version", async () => {
  const result = await runRelay(["version"], { runtime: "deno" });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /deno/i);
});

test("deno: serve answers SMTP and /readyz, stops with 0 on SIGTERM", async () => {
  const relay = await startRelay({ runtime: "deno" });
  try {
    assert.match(await smtpBanner(relay.smtpPort), /^220 relay\.test\b/);
    const ready = await fetch(relay.url("/readyz"));
    await ready.body?.cancel();
    assert.equal(ready.status, 200);
    assert.equal(await relay.stop("SIGTERM"), 0, relay.stderr);
  } finally {
    await relay.cleanup();
  }
});
