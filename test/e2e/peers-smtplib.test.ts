import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PYTHON, pythonMissing, runPeer } from "../helpers/peers.ts";
import { startWorld, type World } from "../helpers/world.ts";

/**
 * Python's smtplib.sendmail with BODY=8BITMIME. Input on stdin as JSON (the
 * message base64, so no byte is touched by any text layer); the client's
 * debug trace (server replies) goes to stderr; the EHLO features and the
 * refused-recipients dict are printed as JSON on stdout.
 */
const SENDMAIL = String.raw`
import base64, json, smtplib, sys
job = json.load(sys.stdin)
with smtplib.SMTP("127.0.0.1", job["port"], local_hostname="smtplib.test", timeout=30) as s:
    s.set_debuglevel(1)
    s.ehlo()
    features = dict(s.esmtp_features)
    refused = s.sendmail(job["from"], job["to"], base64.b64decode(job["message"]), mail_options=["BODY=8BITMIME"])
print(json.dumps({"features": features, "refused": refused}))
`;

describe("Python smtplib (Debian) as the SMTP client", () => {
  let world: World;
  before(async () => {
    if (pythonMissing) return; // every test below is skipped, with the reason
    world = await startWorld();
  });
  after(async () => {
    await world?.close();
  });

  it("sends one message to two recipients with an 8-bit UTF-8 body (BODY=8BITMIME); the bytes arrive intact", {
    skip: pythonMissing,
  }, async () => {
    const body = "Grüße aus Köln – naïve café, 日本語のテキスト, emoji 📬.\r\n" +
      ".a leading dot survives\r\n" +
      "Ünïcödé on the last line\r\n";
    const message = Buffer.from(
      "From: a@sender.test\r\n" +
        "To: one@dest.test, two@dest.test\r\n" +
        "Subject: smtplib 8bit interop\r\n" +
        "Message-ID: <smtplib-8bit@sender.test>\r\n" +
        "MIME-Version: 1.0\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\n" +
        "Content-Transfer-Encoding: 8bit\r\n" +
        "\r\n" +
        body,
      "utf8",
    );
    const job = {
      port: world.relay.smtpPort,
      from: "a@sender.test",
      to: ["one@dest.test", "two@dest.test"],
      message: message.toString("base64"),
    };
    const run = await runPeer(PYTHON, ["-c", SENDMAIL], { input: JSON.stringify(job) });
    assert.equal(run.code, 0, `smtplib failed:\n${run.stdout}\n${run.stderr}`);
    const result = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
    assert.ok("8bitmime" in result.features, `8BITMIME not advertised: ${JSON.stringify(result.features)}`);
    assert.deepEqual(result.refused, {}, "no recipient refused");
    const queued = /queued as ([0-9A-Z]{26})/.exec(run.stderr);
    assert.ok(queued, `no "queued as" reply in smtplib's trace:\n${run.stderr}`);
    const id = queued[1]!;

    await world.destination.waitFor((m) => m.some((r) => r.data.includes("smtplib 8bit interop")));
    const got = world.destination.messages.filter((m) => m.data.includes("smtplib 8bit interop"));
    assert.equal(got.length, 1, "both recipients in one transaction to the same MX");
    const [delivered] = got;
    assert.equal(delivered!.mailFrom, "a@sender.test");
    assert.deepEqual([...delivered!.recipients].sort(), ["one@dest.test", "two@dest.test"]);
    assert.ok(
      delivered!.mailParams.includes("BODY=8BITMIME"),
      `8-bit body relayed without BODY=8BITMIME: ${delivered!.mailParams.join(" ")}`,
    );
    // Byte comparison: everything after the relay's Received header is exactly what smtplib sent.
    const bytes = Buffer.from(delivered!.bytes);
    const start = bytes.indexOf(Buffer.from("From: a@sender.test\r\n"));
    assert.ok(start > 0, "the relay's trace header comes first");
    assert.match(bytes.subarray(0, start).toString("latin1"), /^Received: from smtplib\.test /);
    assert.ok(
      bytes.subarray(start).equals(message),
      `bytes changed:\n${JSON.stringify(bytes.subarray(start).toString("utf8"))}`,
    );

    for (const recipient of ["one@dest.test", "two@dest.test"]) {
      await world.waitForEvent((e) => e.type === "delivered" && e.message_id === id && e.recipient === recipient);
    }
  });
});
