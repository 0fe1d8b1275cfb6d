// Deno end-to-end smoke: the relay's source under Deno accepts a message over
// SMTP and one over HTTP and delivers both to the MX the DNS fixture names.
import assert from "node:assert/strict";
import { test } from "node:test";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld } from "../helpers/world.ts";

test("deno: SMTP and HTTP submissions are delivered through the DNS fixture", async () => {
  const world = await startWorld({ runtime: "deno" });
  try {
    const replies = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["deno-smtp@dest.test"],
      "Subject: deno smtp\r\n\r\nx\r\n",
    );
    assert.match(replies.at(-2)!, /^250 2\.0\.0 /);
    const sent = await world.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: ["deno-http@dest.test"],
      raw: "Subject: deno http\r\n\r\nx\r\n",
    });
    assert.equal(sent.status, 202);
    await world.destination.waitFor((m) =>
      ["deno smtp", "deno http"].every((s) => m.some((r) => r.data.includes(`Subject: ${s}`)))
    );
    await world.waitForEvent((e) => e.type === "delivered" && e.message_id === sent.json.id);
    assert.equal(await world.relay.stop("SIGTERM"), 0);
  } finally {
    await world.close();
  }
});
