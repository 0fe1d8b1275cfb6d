import assert from "node:assert/strict";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, describe, it } from "node:test";
import { freePorts, runRelay, startRelay, testBinary } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";

/** Every path under `dir` (itself included) with its permission bits, e.g. {".": 0o700, "relay.db": 0o600}. */
function modes(dir: string): Record<string, number> {
  const found: Record<string, number> = {};
  const visit = (path: string) => {
    const stat = lstatSync(path);
    found[relative(dir, path) || "."] = stat.mode & 0o777;
    if (stat.isDirectory()) { for (const name of readdirSync(path)) visit(join(path, name)); }
  };
  visit(dir);
  return found;
}

/** Run `body` with the process umask set to `mask` (children inherit it), then put the old one back. */
async function withUmask<T>(mask: number, body: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await body();
  } finally {
    process.umask(old);
  }
}

/** A port with nothing listening: deliveries there are refused and deferred, so the bodies stay in the spool. */
async function deadRoute(): Promise<Record<string, string>> {
  const [port] = await freePorts(1);
  return { RELAY_ROUTES: `*=127.0.0.1:${port}` };
}

/** `relay serve` run to its end: exit code and output (killed after timeoutMs if it keeps serving). */
async function serveOnce(dataDir: string, timeoutMs = 20_000) {
  const [smtp, http] = await freePorts(2);
  return runRelay(["serve"], {
    dataDir,
    binary: testBinary,
    timeoutMs,
    env: {
      RELAY_SMTP_LISTEN: `127.0.0.1:${smtp}`,
      RELAY_HTTP_LISTEN: `127.0.0.1:${http}`,
      RELAY_ADMIN_TOKEN: "x".repeat(32),
    },
  });
}

describe("the data directory is private", () => {
  const parents: string[] = [];
  const parent = () => {
    const dir = mkdtempSync(join(tmpdir(), "relay-data-dir-"));
    parents.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of parents) rmSync(dir, { recursive: true, force: true });
  });

  it("a first start under umask 022 makes the directory 0700 and every file in it 0600: database, WAL, spool, TLS, lock", async () => {
    const dataDir = join(parent(), "data"); // absent: the relay makes it
    const relay = await withUmask(0o022, async () => startRelay({ dataDir, env: await deadRoute() }));
    try {
      const replies = await sendMail(
        relay.smtpPort,
        "a@sender.test",
        ["b@dest.test"],
        "Subject: private\r\n\r\nsecret body\r\n",
      );
      assert.match(replies[5]!, /^250 /, replies.join("\n"));
      const found = modes(dataDir);
      for (const path of ["relay.db", "relay.db-wal", "relay.db-shm", "relay.lock", "tls/cert.pem", "tls/key.pem"]) {
        assert.equal(found[path], 0o600, `${path}: ${JSON.stringify(found)}`);
      }
      const segments = Object.keys(found).filter((p) => p.startsWith("spool/"));
      assert.ok(segments.length > 0, `a spool segment: ${JSON.stringify(found)}`);
      for (const [path, mode] of Object.entries(found)) {
        const directory = lstatSync(join(dataDir, path)).isDirectory();
        assert.equal(mode, directory ? 0o700 : 0o600, `${path} is ${mode.toString(8)}`);
      }
      assert.equal(await relay.stop(), 0, relay.stderr);
    } finally {
      await relay.cleanup();
    }
  });

  it("a directory left open to others is made private at start, with a warning in the log", async () => {
    const dataDir = join(parent(), "data");
    const first = await withUmask(0o022, async () => startRelay({ dataDir, env: await deadRoute() }));
    try {
      await sendMail(first.smtpPort, "a@sender.test", ["b@dest.test"], "Subject: x\r\n\r\nbody\r\n");
      assert.equal(await first.kill9(), 137); // leaves the WAL and the shared memory file behind, as a crash does
    } finally {
      await first.cleanup();
    }
    // What an older relay, a restore or a careless copy leaves: readable by everyone.
    for (const [path] of Object.entries(modes(dataDir))) {
      const full = join(dataDir, path);
      chmodSync(full, lstatSync(full).isDirectory() ? 0o755 : 0o644);
    }
    assert.equal(modes(dataDir)["relay.db-wal"], 0o644);
    const loosened = Object.keys(modes(dataDir)).length;
    const again = await startRelay({ dataDir });
    try {
      for (const [path, mode] of Object.entries(modes(dataDir))) {
        const directory = lstatSync(join(dataDir, path)).isDirectory();
        assert.equal(mode, directory ? 0o700 : 0o600, `${path} is ${mode.toString(8)}`);
      }
      const warning = again.stderr.split("\n").find((line) => line.includes("made private"));
      assert.ok(warning, again.stderr);
      const fields = JSON.parse(warning) as { level: string; dir: string; tightened: string[]; more?: number };
      assert.equal(fields.level, "warn");
      assert.equal(fields.dir, dataDir);
      // The first few paths are named, the rest counted: every one that was loosened.
      assert.ok(fields.tightened.includes(dataDir), warning);
      assert.equal(fields.tightened.length + (fields.more ?? 0), loosened, warning);
      assert.equal(await again.stop(), 0, again.stderr);
    } finally {
      await again.cleanup();
    }
  });

  it("a directory owned by another user stops serve and the CLI with exit 1, naming the owner", {
    skip: process.getuid?.() !== 0 && "needs root to chown",
  }, async () => {
    const dataDir = join(parent(), "data");
    mkdirSync(dataDir, { mode: 0o700 });
    chownSync(dataDir, 65534, 65534); // nobody
    const served = await serveOnce(dataDir);
    assert.equal(served.code, 1, served.stderr);
    assert.match(
      served.stderr,
      new RegExp(`RELAY_DATA_DIR ${dataDir} is owned by uid 65534, not by uid 0 that runs the relay`),
    );
    const listed = await runRelay(["users", "list"], { dataDir, binary: testBinary });
    assert.equal(listed.code, 1, listed.stderr);
    assert.match(listed.stderr, /is owned by uid 65534/);
    assert.deepEqual(readdirSync(dataDir), [], "nothing was written into it");
  });
});

describe("one relay per data directory", () => {
  it("a second serve exits 1 naming the first's pid; CLI commands work meanwhile; kill -9 leaves no stale lock", async () => {
    const first = await startRelay({ binary: testBinary });
    const { dataDir } = first;
    try {
      const second = await serveOnce(dataDir);
      assert.equal(second.code, 1, second.stderr);
      assert.match(
        second.stderr,
        new RegExp(`another relay \\(pid ${first.pid}\\) is already serving RELAY_DATA_DIR ${dataDir}`),
      );
      assert.ok(first.running);
      const ready = await fetch(first.url("/readyz"));
      await ready.body?.cancel();
      assert.equal(ready.status, 200, "the first one goes on");

      const added = await runRelay(["users", "add", "alice"], {
        dataDir,
        binary: testBinary,
        input: "a long enough password",
      });
      assert.equal(added.code, 0, added.stderr);
      const listed = await runRelay(["users", "list"], { dataDir, binary: testBinary });
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^alice\s/m);

      assert.equal(await first.kill9(), 137);
      assert.ok(existsSync(join(dataDir, "relay.lock")), "the file stays; the lock was the process's");
      const third = await startRelay({ dataDir, binary: testBinary });
      try {
        assert.equal(await third.stop(), 0, third.stderr);
      } finally {
        await third.cleanup();
      }
    } finally {
      await first.cleanup();
    }
  });
});
