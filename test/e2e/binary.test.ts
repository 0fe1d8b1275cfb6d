import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runRelay, testBinary } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

// dist/relay is built by `npm test` (scripts/test.mjs), which sets RELAY_TEST_BINARY.
describe("dist/relay alone in an empty directory, with no node, bun or deno on PATH", {
  skip: testBinary ? false : "RELAY_TEST_BINARY is not set (npm test builds dist/relay and sets it)",
}, () => {
  let dir: string;
  let binary: string;
  let world: World;
  const isolated = { PATH: "/nonexistent", NODE_PATH: "" };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "relay-binary-"));
    binary = join(dir, "relay");
    copyFileSync(testBinary!, binary);
    world = await startWorld({ binary, env: isolated });
  });
  after(async () => {
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints its version", async () => {
    const result = await runRelay(["version"], { binary, env: isolated });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^relay \d+\.\d+\.\d+/);
    assert.deepEqual(readdirSync(dir), ["relay"], "nothing is unpacked next to the binary");
  });

  it("applies its embedded migrations", async () => {
    const result = await runRelay(["migrate"], { binary, env: isolated });
    assert.equal(result.code, 0, result.stderr);
  });

  it("checks the serving relay's data directory and schema against its embedded migrations", async () => {
    const { relay } = world;
    const result = await runRelay(["check"], {
      binary,
      dataDir: relay.dataDir,
      env: {
        ...isolated,
        RELAY_SMTP_LISTEN: `127.0.0.1:${relay.smtpPort}`,
        RELAY_HTTP_LISTEN: `127.0.0.1:${relay.httpPort}`,
      },
    });
    assert.match(result.stdout, /^PASS database file:.*: schema up to date \(\d+ migrations\)$/m, result.stderr);
    assert.match(result.stdout, /^PASS RELAY_SMTP_LISTEN 127\.0\.0\.1:\d+: in use by this relay, which is serving/m);
  });

  it("delivers SMTP and HTTP submissions and bounces a 5xx recipient back to the sender", async () => {
    const replies = await sendMail(world.relay.smtpPort, "origin@sender.test", [
      "bin-smtp@dest.test",
      "permfail@dest.test",
    ], "Subject: from the binary\r\n\r\nx\r\n");
    assert.match(replies.at(-2)!, /^250 2\.0\.0 /);
    const sent = await world.api("POST", "/v1/messages", {
      mail_from: "origin@sender.test",
      rcpt_to: ["bin-http@dest.test"],
      raw: "Subject: binary http\r\n\r\nx\r\n",
    });
    assert.equal(sent.status, 202);
    await world.destination.waitFor((m) =>
      m.some((r) => r.recipients.includes("bin-smtp@dest.test")) &&
      m.some((r) => r.recipients.includes("bin-http@dest.test")) &&
      m.some((r) => r.mailFrom === "" && r.recipients.includes("origin@sender.test"))
    );
    const dsn = world.destination.messages.find((r) => r.mailFrom === "")!;
    assert.match(dsn.data, /^Status: 5\.1\.1$/m);
  });

  it("signs with DKIM on its embedded signing worker", async () => {
    const added = await runRelay(["domains", "add", "signed.test", "--algorithm", "both"], {
      binary,
      dataDir: world.relay.dataDir,
      env: isolated,
    });
    assert.equal(added.code, 0, added.stderr);
    const sent = await world.api("POST", "/v1/messages", {
      mail_from: "a@signed.test",
      rcpt_to: ["bin-dkim@dest.test"],
      raw: "From: a@signed.test\r\nTo: bin-dkim@dest.test\r\nSubject: binary dkim\r\n\r\nx\r\n",
    });
    assert.equal(sent.status, 202);
    await world.destination.waitFor((m) => m.some((r) => r.recipients.includes("bin-dkim@dest.test")));
    const message = world.destination.messages.find((r) => r.recipients.includes("bin-dkim@dest.test"))!;
    assert.equal((message.data.match(/^DKIM-Signature: /gm) ?? []).length, 2, "an RSA and an Ed25519 signature");
    assert.match(message.data, /d=signed\.test/);
  });
});
