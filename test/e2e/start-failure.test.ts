import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startRelay as startInProcess } from "../../src/app/relay.ts";
import { loadConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/core/log.ts";
import { detectRuntime } from "../../src/platform/runtime.ts";
import { lockDataDir } from "../../src/queue/data-dir.ts";
import { freePorts, runRelay, startRelay, testBinary } from "../helpers/relay-process.ts";

/** A TCP server on a loopback port, so that the relay finds it taken. */
async function occupy(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", () => ok()));
  return { server, port: (server.address() as { port: number }).port };
}

/** Whether `port` on 127.0.0.1 can be listened on (nothing holds it). */
async function free(port: number): Promise<boolean> {
  const server = createServer();
  const listening = await new Promise<boolean>((ok) =>
    server.once("error", () => ok(false)).listen(port, "127.0.0.1", () => ok(true))
  );
  if (listening) await new Promise<void>((ok) => server.close(() => ok()));
  return listening;
}

/** The files under `dir` this process holds open (Linux: /proc/self/fd). */
function heldOpen(dir: string): string[] {
  const root = realpathSync(dir);
  return readdirSync("/proc/self/fd").flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(`${root}/`) ? [target.slice(root.length + 1)] : [];
    } catch {
      return []; // closed since the listing (the listing's own descriptor)
    }
  });
}

describe("a start that fails leaves nothing open", () => {
  let taken: { server: Server; port: number };
  const dirs: string[] = [];
  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "relay-start-failure-"));
    dirs.push(dir);
    return dir;
  };
  before(async () => {
    taken = await occupy();
  });
  after(async () => {
    await new Promise<void>((ok) => taken.server.close(() => ok()));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("the HTTP port taken after SMTP listens: the error names it; the SMTP listener, delivery journal, spool, database and lock are closed, the last opened first", async () => {
    const dir = dataDir();
    const [smtpPort] = await freePorts(1);
    const config = loadConfig(
      {
        RELAY_DATA_DIR: dir,
        RELAY_SMTP_LISTEN: `127.0.0.1:${smtpPort}`,
        RELAY_HTTP_LISTEN: `127.0.0.1:${taken.port}`,
        RELAY_ADMIN_TOKEN: "x".repeat(32),
        RELAY_HOSTNAME: "relay.test",
      },
      "relay.test",
    );
    const runtime = detectRuntime();
    const lines: string[] = [];
    const log = createLogger("debug", "json", (line) => lines.push(line));
    await assert.rejects(
      startInProcess(config, runtime, "test", log),
      new RegExp(`^Error: cannot listen for HTTP on 127\\.0\\.0\\.1:${taken.port}: EADDRINUSE$`),
    );
    const logged = lines.map((line) => JSON.parse(line) as { level: string; message: string });
    assert.deepEqual(
      logged.filter((l) => l.message.startsWith("closing ")).map((l) => `${l.level} ${l.message}`),
      [
        `debug closing the SMTP listener on 127.0.0.1:${smtpPort}`,
        "debug closing the TLS certificate source",
        "debug closing the delivery journal",
        "debug closing the spool",
        "debug closing the DKIM signer",
        "debug closing the database",
        "debug closing the data directory's lock",
      ],
      "what was opened is closed, the last opened first, and every close went well",
    );
    assert.ok(await free(smtpPort!), "the SMTP port is free again");
    // The database's own files are left out: libSQL keeps a closed connection's files open until
    // its prepared statements are garbage (it has no way to finalize them), which the process's end does.
    const held = heldOpen(dir).filter((file) => !/^relay\.db(-wal|-shm)?$/.test(file));
    assert.deepEqual(held, [], "nothing else under the data directory is held open: spool, lock");
    const lock = await lockDataDir(dir, runtime);
    lock.release();
  });

  it("serve exits 1 naming the listener, and a relay can start on the same data directory right after", async () => {
    const dir = dataDir();
    const [smtpPort] = await freePorts(1);
    const failed = await runRelay(["serve"], {
      dataDir: dir,
      binary: testBinary,
      env: {
        RELAY_SMTP_LISTEN: `127.0.0.1:${smtpPort}`,
        RELAY_HTTP_LISTEN: `127.0.0.1:${taken.port}`,
        RELAY_ADMIN_TOKEN: "x".repeat(32),
      },
    });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(
      failed.stderr,
      new RegExp(`relay cannot start: cannot listen for HTTP on 127\\.0\\.0\\.1:${taken.port}: EADDRINUSE`),
    );
    const relay = await startRelay({ dataDir: dir, binary: testBinary });
    try {
      assert.equal(await relay.stop(), 0, relay.stderr);
    } finally {
      await relay.cleanup();
    }
  });
});
