import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Reply, reply } from "../../src/core/reply.ts";
import { createLogger, type LogLevel } from "../../src/core/log.ts";
import { loggedHooks, loggedSessionError } from "../../src/ingress/logged-hooks.ts";
import { type SessionInfo, type SmtpServerHooks, startSmtpServer } from "../../src/smtp/server/index.ts";
import { SmtpTalk } from "../helpers/smtp-talk.ts";

/**
 * A real SMTP server whose hooks and faults are logged as the relay logs
 * them (JSON lines); `talk` runs a client against it. Returns the JSON
 * lines and the ids of the sessions the hooks saw.
 */
async function loggedServer(hooks: SmtpServerHooks, talk: (client: SmtpTalk) => Promise<void>) {
  const lines: string[] = [];
  const log = createLogger("info", "json", (line) => lines.push(line));
  const sessions: string[] = [];
  const seen: SmtpServerHooks = { ...hooks, onConnect: async (s) => void sessions.push(s.id) };
  const server = await startSmtpServer(
    { host: "127.0.0.1", port: 0 },
    { hostname: "mx.test", maxMessageBytes: 1000, maxRecipients: 5, onError: loggedSessionError(log) },
    loggedHooks(seen, log),
  );
  try {
    const client = await SmtpTalk.open(server.port);
    try {
      await talk(client);
    } finally {
      client.close();
    }
  } finally {
    await server.closeAll();
  }
  return { logged: lines.map((line) => JSON.parse(line) as Record<string, unknown>), sessions };
}

const session: SessionInfo = {
  id: "s1",
  remoteAddress: "192.0.2.1",
  remotePort: 1,
  localAddress: "127.0.0.1",
  localPort: 25,
  secure: false,
};
const mailbox = { local: "a", domain: "x.test" };

function recorder() {
  const lines: { level: LogLevel; message: string; error: unknown }[] = [];
  return {
    lines,
    log: (level: LogLevel, message: string, fields?: Record<string, unknown>) =>
      void lines.push({ level, message, error: fields?.error }),
  };
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
    await assert.rejects(
      hooks.onData(session, { mailFrom: null, mailParams: {}, recipients: [] }, new Uint8Array()),
      (e) => e === failure,
    );
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

describe("unexpected errors in an SMTP session", () => {
  const transaction = async (client: SmtpTalk) => {
    assert.match(await client.reply(), /^220 /);
    assert.match(await client.command("EHLO client.test"), /^250/);
    assert.match(await client.command("MAIL FROM:<a@x.test>"), /^250/);
  };

  it("a hook that fails is answered 451 and logged once, as JSON naming the session", async () => {
    const { logged, sessions } = await loggedServer(
      {
        onRcptTo: async () => Promise.reject(new Error("database is gone")),
        onData: async () => reply(250, "2.0.0", "ok"),
      },
      async (client) => {
        await transaction(client);
        assert.equal(await client.command("RCPT TO:<b@y.test>"), "451 4.3.0 Internal error; try again later");
        assert.match(await client.command("RSET"), /^250/, "the session goes on");
      },
    );
    assert.equal(logged.length, 1, JSON.stringify(logged));
    assert.equal(logged[0]!.level, "error");
    assert.equal(logged[0]!.message, "SMTP onRcptTo failed");
    assert.equal(logged[0]!.session, sessions[0]);
    assert.match(String(logged[0]!.error), /database is gone/);
  });

  it("a fault of the engine (a hook answer that is no Reply) is answered 421 and logged once, as JSON naming the session", async () => {
    const notAReply = { code: 250 } as unknown as Reply; // no lines: formatting it throws inside the session
    const { logged, sessions } = await loggedServer(
      { onRcptTo: async () => notAReply, onData: async () => reply(250, "2.0.0", "ok") },
      async (client) => {
        await transaction(client);
        assert.equal(await client.command("RCPT TO:<b@y.test>"), "421 4.3.0 mx.test Internal error, closing channel");
      },
    );
    assert.equal(logged.length, 1, JSON.stringify(logged));
    assert.equal(logged[0]!.level, "error");
    assert.equal(logged[0]!.message, "SMTP session failed");
    assert.equal(logged[0]!.session, sessions[0]);
    assert.equal(logged[0]!.remote, "127.0.0.1");
    assert.match(String(logged[0]!.error), /TypeError/);
  });
});
