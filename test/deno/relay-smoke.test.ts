// Deno smoke: the relay's source runs under Deno (`deno run src/main.ts`),
// answers on SMTP and HTTP, and shuts down cleanly on SIGTERM.
// Run by `npm test` (scripts/test.mjs), or alone by `deno test --allow-all`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lstatSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts, runRelay, type Runtime, startRelay } from "../helpers/relay-process.ts";

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

test("deno: the data directory is private and serves one relay, whichever runtime asks; kill -9 leaves no stale lock", async () => {
  const parent = mkdtempSync(join(tmpdir(), "relay-deno-data-"));
  const dataDir = join(parent, "data");
  const old = process.umask(0o022);
  const first = await startRelay({ runtime: "deno", dataDir }).finally(() => process.umask(old));
  try {
    assert.equal(lstatSync(dataDir).mode & 0o777, 0o700);
    for (const file of ["relay.db", "relay.db-wal", "relay.lock", "tls/key.pem", "tls/cert.pem"]) {
      assert.equal(lstatSync(join(dataDir, file)).mode & 0o777, 0o600, file);
    }
    // The Deno relay's lock keeps out a second one under Deno and one under Bun: both take the same flock(2) lock.
    for (const runtime of ["deno", "bun"] as Runtime[]) {
      const [smtp, http] = await freePorts(2);
      const env = {
        RELAY_SMTP_LISTEN: `127.0.0.1:${smtp}`,
        RELAY_HTTP_LISTEN: `127.0.0.1:${http}`,
        RELAY_ADMIN_TOKEN: "x".repeat(32),
      };
      const second = await runRelay(["serve"], { runtime, dataDir, env, timeoutMs: 20_000 });
      assert.equal(second.code, 1, `${runtime}: ${second.stderr}`);
      assert.match(second.stderr, new RegExp(`another relay \\(pid ${first.pid}\\)`), runtime);
    }
    assert.equal(await first.kill9(), 137);
    const third = await startRelay({ runtime: "deno", dataDir });
    try {
      assert.equal(await third.stop("SIGTERM"), 0, third.stderr);
    } finally {
      await third.cleanup();
    }
  } finally {
    await first.cleanup();
    rmSync(parent, { recursive: true, force: true });
  }
});
