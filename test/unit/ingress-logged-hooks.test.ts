import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reply } from "../../src/core/reply.ts";
import type { LogLevel } from "../../src/events/log.ts";
import { loggedHooks } from "../../src/ingress/logged-hooks.ts";
import type { SessionInfo, SmtpServerHooks } from "../../src/smtp/server/index.ts";

const session: SessionInfo = { id: "s1", remoteAddress: "192.0.2.1", remotePort: 1, localAddress: "127.0.0.1", localPort: 25, secure: false };
const mailbox = { local: "a", domain: "x.test" };

function recorder() {
  const lines: { level: LogLevel; message: string; error: unknown }[] = [];
  return { lines, log: (level: LogLevel, message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, error: fields?.error }) };
}

describe("loggedHooks", () => {
  it("passes the arguments through and the hook's answer back, and logs nothing", async () => {
    const seen: unknown[][] = [];
    const { lines, log } = recorder();
    const hooks = loggedHooks(
      {
        onRcptTo: async (...args) => void seen.push(args),
        onData: async () => reply(250, "2.0.0", "queued"),
      },
      log,
    );
    const envelope = { mailFrom: null, mailParams: {}, recipients: [] };
    assert.equal(await hooks.onRcptTo(session, mailbox, {}, envelope), undefined);
    assert.deepEqual(seen, [[session, mailbox, {}, envelope]]);
    assert.deepEqual(await hooks.onData(session, envelope, new Uint8Array()), reply(250, "2.0.0", "queued"));
    assert.equal(hooks.onMailFrom, undefined, "a hook the application left out stays out");
    assert.deepEqual(lines, []);
  });

  it("logs a rejection with the hook's name and the stack, and rejects with the same error", async () => {
    const { lines, log } = recorder();
    const failure = new Error("database is gone");
    const hooks = loggedHooks({ onRcptTo: async () => undefined, onData: async () => Promise.reject(failure) }, log);
    await assert.rejects(hooks.onData(session, { mailFrom: null, mailParams: {}, recipients: [] }, new Uint8Array()), (e) => e === failure);
    assert.deepEqual(lines, [{ level: "error", message: "SMTP onData failed", error: failure.stack }]);
  });

  it("a hook that throws before it returns a promise is logged and becomes a rejection too", async () => {
    const { lines, log } = recorder();
    const throwsAtOnce = (() => {
      throw "plain text";
    }) as unknown as SmtpServerHooks["onRcptTo"];
    const hooks = loggedHooks({ onRcptTo: throwsAtOnce, onData: async () => reply(250, "2.0.0", "ok") }, log);
    const result = hooks.onRcptTo(session, mailbox, {}, { mailFrom: null, mailParams: {}, recipients: [] });
    assert.ok(result instanceof Promise);
    await assert.rejects(result, (e) => e === "plain text");
    assert.deepEqual(lines, [{ level: "error", message: "SMTP onRcptTo failed", error: "plain text" }]);
  });
});
