import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Closers } from "../../src/app/closers.ts";
import { systemClock } from "../../src/core/clock.ts";
import { createLogger } from "../../src/core/log.ts";
import { openQueue } from "../../src/queue/open.ts";
import { QueueStore } from "../../src/queue/store.ts";

/** A logger that keeps the JSON lines it writes. */
function recordingLog() {
  const lines: { level: string; message: string; error?: string }[] = [];
  return { lines, log: createLogger("info", "json", (line) => lines.push(JSON.parse(line))) };
}

describe("Closers: what a start opened, closed in reverse", () => {
  it("closes the last added first, each once", async () => {
    const { log, lines } = recordingLog();
    const closers = new Closers(log);
    const closed: string[] = [];
    for (const what of ["lock", "database", "listener"]) closers.add(what, async () => void closed.push(what));
    assert.equal(await closers.closeAll(), true);
    assert.deepEqual(closed, ["listener", "database", "lock"]);
    assert.equal(await closers.closeAll(), true, "a second call has nothing left to close");
    assert.deepEqual(closed, ["listener", "database", "lock"]);
    assert.deepEqual(lines, []);
  });

  it("a close that fails is logged and does not stop the database from closing, nor the lock from being released", async () => {
    const dir = mkdtempSync(join(tmpdir(), "relay-closers-"));
    try {
      const { database } = await openQueue(`file:${join(dir, "relay.db")}`, { version: "test", log: () => {} });
      const store = new QueueStore(database, undefined, systemClock, "node-test");
      assert.equal(await store.answers(), true, "open: the database answers");
      const { log, lines } = recordingLog();
      const closers = new Closers(log);
      let lockReleased = false;
      closers.add("the data directory's lock", () => void (lockReleased = true));
      closers.add("the database", () => database.close());
      closers.add("the TLS certificate source", () => {
        throw new Error("certificate watcher is stuck");
      });
      closers.add("the HTTP listener", async () => Promise.reject(new Error("port gone")));

      assert.equal(await closers.closeAll(), false, "not clean");
      assert.equal(await store.answers(), false, "the database was closed all the same");
      assert.ok(lockReleased);
      assert.deepEqual(
        lines.map((l) => [l.level, l.message]),
        [
          ["error", "closing the HTTP listener failed"],
          ["error", "closing the TLS certificate source failed"],
        ],
      );
      assert.match(lines[1]!.error!, /certificate watcher is stuck/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
