import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Mailbox } from "../../src/core/address.ts";
import { formatReply, type Reply } from "../../src/core/reply.ts";
import { parseMailFrom } from "../../src/smtp/protocol/command.ts";
import type { MailParams } from "../../src/smtp/protocol/params.ts";
import { type CommandContext, ehlo, mail, newSessionInfo } from "../../src/smtp/server/commands.ts";
import { frame } from "../../src/smtp/server/dispatch.ts";
import { resolveOptions } from "../../src/smtp/server/types.ts";
import type { Socket } from "../../src/platform/net.ts";
import { failOnSessionError } from "../helpers/smtp-server.ts";

/** REQUIRETLS on the receiving side (RFC 8689 2): the MAIL parameter, and where a server takes it. */

describe("MAIL FROM parameter REQUIRETLS", () => {
  it("is a keyword without a value, in any case", () => {
    for (
      const text of [
        "FROM:<a@b.test> REQUIRETLS",
        "FROM:<a@b.test> requiretls",
        "FROM:<a@b.test> SIZE=10 RequireTLS BODY=8BITMIME",
      ]
    ) {
      const parsed = parseMailFrom(text);
      assert.ok(parsed.ok, text);
      assert.equal(parsed.params.requireTls, true, text);
    }
    const plain = parseMailFrom("FROM:<a@b.test>");
    assert.ok(plain.ok);
    assert.equal(plain.params.requireTls, undefined);
  });

  it("with a value, or twice, is a syntax error (501 5.5.4)", () => {
    for (const text of ["FROM:<a@b.test> REQUIRETLS=YES", "FROM:<a@b.test> REQUIRETLS REQUIRETLS"]) {
      const parsed = parseMailFrom(text);
      assert.equal(parsed.ok, false, text);
      assert.equal(!parsed.ok && parsed.reply.code, 501, text);
      assert.equal(!parsed.ok && parsed.reply.enhanced, "5.5.4", text);
    }
  });
});

/** A command context over no socket: what ehlo() and mail() read, and the MAIL hook's calls. */
function context(secure: boolean) {
  const seen: MailParams[] = [];
  const info = { ...newSessionInfo({} as Socket), secure };
  const ctx: CommandContext = {
    info,
    options: resolveOptions({
      hostname: "mx.test",
      maxMessageBytes: 1000,
      maxRecipients: 10,
      onError: failOnSessionError,
    }),
    hooks: {
      onMailFrom: async (_s, _from: Mailbox | null, params) => {
        seen.push(params);
        return undefined;
      },
      onRcptTo: async () => undefined,
      onData: async () => {
        throw new Error("not reached");
      },
    },
    state: { greeted: false },
    canStartTls: () => !secure,
    call: async (fn) => ({ value: await fn() }),
  };
  return { ctx, seen };
}

const keywords = (r: Reply) => r.lines.slice(1);

describe("a server and REQUIRETLS", () => {
  it("EHLO offers REQUIRETLS on a TLS session only", () => {
    assert.equal(keywords(ehlo(context(false).ctx, "client.test")).includes("REQUIRETLS"), false);
    assert.ok(keywords(ehlo(context(true).ctx, "client.test")).includes("REQUIRETLS"));
  });

  it("MAIL FROM with REQUIRETLS outside TLS: 530 5.7.10, no transaction, the hook not asked", async () => {
    const { ctx, seen } = context(false);
    ehlo(ctx, "client.test");
    const answer = await mail(ctx, "FROM:<a@b.test> REQUIRETLS");
    assert.match(formatReply(answer), /^530 5\.7\.10 /);
    assert.equal(ctx.state.tx, undefined);
    assert.deepEqual(seen, []);
  });

  it("MAIL FROM with REQUIRETLS inside TLS: accepted, and the application is told", async () => {
    const { ctx, seen } = context(true);
    ehlo(ctx, "client.test");
    assert.equal((await mail(ctx, "FROM:<a@b.test> REQUIRETLS")).code, 250);
    assert.equal(seen[0]?.requireTls, true);
    assert.equal(ctx.state.tx?.params.requireTls, true);
  });

  it("a MAIL line may be 11 octets longer than 512 for REQUIRETLS (RFC 8689 2 item 5); other commands may not", () => {
    const { ctx } = context(true);
    const line = (verb: string, length: number) => {
      const head = `${verb} FROM:<`;
      const tail = "@b.test> REQUIRETLS";
      return {
        kind: "line" as const,
        bytes: new TextEncoder().encode(head + "a".repeat(length - 2 - head.length - tail.length) + tail),
      };
    };
    assert.ok("verb" in frame(ctx, line("MAIL", 523)));
    assert.ok("reply" in frame(ctx, line("MAIL", 524)));
    assert.ok("reply" in frame(ctx, line("RCPT", 513)));
  });
});
