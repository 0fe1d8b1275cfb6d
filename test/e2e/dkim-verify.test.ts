// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * DKIM signatures made by the real relay, checked by an independent verifier:
 * dkimpy (Debian python3-dkim, with PyNaCl for Ed25519), looking the keys up
 * in the DNS fixture with dnspython. Messages go in over SMTP and HTTP and are
 * verified as the destination received them.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { dkimpyMissing, FIXTURE_DNSFUNC } from "../helpers/dkimpy.ts";
import { PYTHON, runPeer } from "../helpers/peers.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { SmtpTalk } from "../helpers/smtp-talk.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";
import type { Received } from "../fixtures/smtp-destination.ts";

const dkimpyUnavailable = dkimpyMissing(
  ["dkim", "dns.resolver", "nacl"],
  "python3-dkim python3-dnspython python3-nacl",
);

/** Verifies every DKIM-Signature of the message on stdin; prints one JSON object per signature. */
const VERIFY = `${FIXTURE_DNSFUNC}message = sys.stdin.buffer.read()
d = dkim.DKIM(message)
count = sum(1 for name, _ in d.headers if name.lower() == b'dkim-signature')
out = []
for i in range(count):
    v = dkim.DKIM(message)
    ok = v.verify(idx=i, dnsfunc=dnsfunc)
    out.append({'ok': bool(ok), 's': (v.selector or b'').decode(), 'a': (v.signature_fields.get(b'a') or b'').decode()})
print(json.dumps({'first': bool(dkim.verify(message, dnsfunc=dnsfunc)), 'signatures': out}))
`;

async function dkimpy(
  world: World,
  bytes: Uint8Array,
): Promise<{ first: boolean; signatures: { ok: boolean; s: string; a: string }[] }> {
  const result = await runPeer(PYTHON, ["-c", VERIFY, String(world.dns.port)], { input: bytes });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/** One SMTP transaction with the message sent exactly as given (dot-stuffed), optionally with SMTPUTF8. */
async function smtpSend(port: number, mailFrom: string, rcpt: string, raw: string, params = ""): Promise<void> {
  const talk = await SmtpTalk.open(port);
  try {
    await talk.reply();
    await talk.command("EHLO client.test");
    assert.match(await talk.command(`MAIL FROM:<${mailFrom}>${params}`), /^250/);
    assert.match(await talk.command(`RCPT TO:<${rcpt}>`), /^250/);
    assert.match(await talk.command("DATA"), /^354/);
    const stuffed = raw.replace(/^\./gm, "..");
    talk.write(Buffer.from(`${stuffed}${stuffed.endsWith("\r\n") ? "" : "\r\n"}.\r\n`, "utf8"));
    assert.match(await talk.reply(), /^250/);
    await talk.command("QUIT");
  } finally {
    talk.close();
  }
}

const header = (name: string, bytes: Uint8Array) => {
  const text = Buffer.from(bytes).toString("latin1");
  return text.slice(0, text.indexOf("\r\n\r\n") + 2).match(new RegExp(`^${name}:`, "gim"))?.length ?? 0;
};

describe("DKIM: signed by the relay, verified by dkimpy", { skip: dkimpyUnavailable }, () => {
  let world: World;
  let records: { name: string; type: string; value: string; purpose: string }[];

  before(async () => {
    world = await startWorld({ env: { RELAY_SOURCE_IP: "127.0.0.1" } });
    // Added while the relay runs: it reads keys per message (short cache).
    const added = await runRelay(["domains", "add", "sender.test", "--algorithm", "both", "--json"], {
      dataDir: world.relay.dataDir,
      env: { RELAY_DNS_SERVERS: `127.0.0.1:${world.dns.port}`, RELAY_SOURCE_IP: "127.0.0.1" },
    });
    assert.equal(added.code, 0, added.stderr);
    assert.doesNotMatch(added.stdout, /PRIVATE KEY/);
    records = JSON.parse(added.stdout).records;
    publish(records);
  });
  after(async () => {
    await world?.close();
  });

  function publish(list: typeof records) {
    const zone: Record<string, any> = { ...defaultZone() };
    for (const r of list) {
      if (r.type !== "TXT") continue;
      const entry = (zone[r.name] ??= {});
      entry.TXT = [...(entry.TXT ?? []), r.value];
    }
    world.dns.setZone(zone);
  }

  const received = async (marker: string): Promise<Received> => {
    await world.destination.waitFor((m) => m.some((r) => r.data.includes(marker)));
    return world.destination.messages.find((r) => r.data.includes(marker))!;
  };

  async function assertVerified(marker: string) {
    const message = await received(marker);
    const result = await dkimpy(world, message.bytes);
    assert.deepEqual(
      result.signatures.map((s) => [s.a, s.ok]),
      [["rsa-sha256", true], ["ed25519-sha256", true]],
      `${marker}: ${JSON.stringify(result)}\n${message.data.slice(0, 3000)}`,
    );
    assert.equal(result.first, true, "dkim.verify() (first signature)");
    return message;
  }

  const smtpCases: [string, string, string?][] = [
    ["plain", "From: A <a@sender.test>\r\nTo: t@dest.test\r\nSubject: plain\r\nX-Case: plain\r\n\r\nhello\r\n"],
    [
      "long-folded",
      `From: A <a@sender.test>\r\nTo: ${Array.from({ length: 30 }, (_, i) => `r${i}@dest.test`).join(",\r\n  ")}\r\n` +
      `Subject: ${
        Array.from({ length: 40 }, (_, i) => `word${i}`).join("\r\n\t")
      }\r\nX-Case: long-folded\r\n\r\nbody\r\n`,
    ],
    [
      "trailing-ws",
      "From: a@sender.test \r\nTo: t@dest.test\t\r\nSubject: trailing   \r\nX-Case: trailing-ws\r\n\r\nline with spaces   \r\ntab\t\r\n",
    ],
    [
      "trailing-empty",
      "From: a@sender.test\r\nTo: t@dest.test\r\nSubject: empties\r\nX-Case: trailing-empty\r\n\r\nbody\r\n\r\n\r\n\r\n",
    ],
    [
      "utf8-body",
      "From: a@sender.test\r\nTo: t@dest.test\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nX-Case: utf8-body\r\n\r\nGrüße aus Köln, 日本語, emoji 🎉\r\n",
      " BODY=8BITMIME",
    ],
    [
      "smtputf8",
      "From: Jöran <jöran@sender.test>\r\nTo: Zoë <t@dest.test>\r\nSubject: grüße 日本\r\nX-Case: smtputf8\r\n\r\nüber\r\n",
      " SMTPUTF8 BODY=8BITMIME",
    ],
    // Octets 0xA0 and 0x85 inside UTF-8 characters (à C3 A0, Р D0 A0, Π CE A0, 蠀 E8 A0 80, Å C3 85), VT and FF (RFC 6532, RFC 6376 3.4.2).
    [
      "utf8-a0",
      "From: Jöran <jöran@sender.test>\r\nTo: Zoë <t@dest.test>\r\nSubject: à la Рим  Π\t蠀 Å\x0b\x0cend\r\n\tfolded à\r\nX-Case: utf8-a0\r\n\r\nà  Рим\t\r\n",
      " SMTPUTF8 BODY=8BITMIME",
    ],
    ["no-body", "From: a@sender.test\r\nTo: t@dest.test\r\nSubject: no body\r\nX-Case: no-body\r\n"],
    [
      "duplicates",
      "From: a@sender.test\r\nTo: t@dest.test\r\nTo: u@dest.test\r\nSubject: one\r\nSubject: two\r\nX-Case: duplicates\r\nX-Case: duplicates\r\n\r\nbody\r\n",
    ],
    [
      "lone-dot",
      "From: a@sender.test\r\nTo: t@dest.test\r\nSubject: dots\r\nX-Case: lone-dot\r\n\r\nbefore\r\n.\r\n..\r\n.after\r\n",
    ],
  ];

  for (const [name, raw, params] of smtpCases) {
    it(`over SMTP: ${name}`, async () => {
      const from = name === "smtputf8" || name === "utf8-a0" ? "jöran@sender.test" : "a@sender.test";
      await smtpSend(world.relay.smtpPort, from, "t@dest.test", raw, params ?? "");
      const message = await assertVerified(`X-Case: ${name}`);
      if (name === "lone-dot") assert.match(message.data, /\r\nbefore\r\n\.\r\n\.\.\r\n\.after\r\n$/);
      if (name === "duplicates") assert.equal(header("To", message.bytes), 2);
    });
  }

  it("over HTTP raw: no final CRLF, a lone dot; a 5,000-character line is refused as SMTP refuses it", async () => {
    const tooLong = `From: a@sender.test\nTo: t@dest.test\nSubject: long line\n\n${"x".repeat(5000)}\n`;
    const refused = await world.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: ["t@dest.test"],
      raw: tooLong,
    });
    assert.equal(refused.status, 422);
    assert.equal(refused.json.errors[0].field, "raw");
    const cases = {
      "no-final-crlf":
        "From: a@sender.test\nTo: t@dest.test\nSubject: no final CRLF\nX-Case: no-final-crlf\n\nlast line",
      "http-dot": "From: a@sender.test\nTo: t@dest.test\nSubject: dot\nX-Case: http-dot\n\n.\n",
    };
    for (const [name, raw] of Object.entries(cases)) {
      const sent = await world.api("POST", "/v1/messages", {
        mail_from: "a@sender.test",
        rcpt_to: ["t@dest.test"],
        raw,
      });
      assert.equal(sent.status, 202, JSON.stringify(sent.json));
      await assertVerified(`X-Case: ${name}`);
    }
  });

  it("over HTTP structured, a 5,000-character line (MIME encodes it) verifies", async () => {
    const sent = await world.api("POST", "/v1/messages", {
      from: "a@sender.test",
      to: ["t@dest.test"],
      subject: "long line",
      text: "y".repeat(5000),
      headers: { "X-Case": "long-structured" },
    });
    assert.equal(sent.status, 202);
    await assertVerified("X-Case: long-structured");
  });

  it("over HTTP structured (MIME built by the relay)", async () => {
    const sent = await world.api("POST", "/v1/messages", {
      from: "Sender <a@sender.test>",
      to: ["t@dest.test"],
      subject: "structured ünïcode",
      text: "plain",
      html: "<p>html</p>",
      headers: { "X-Case": "structured", "List-Unsubscribe": "<mailto:u@sender.test>" },
    });
    assert.equal(sent.status, 202);
    const message = await assertVerified("X-Case: structured");
    assert.match(message.data, /^DKIM-Signature:[^]*?h=[^;]*List-Unsubscribe/m, "List-Unsubscribe is signed");
  });

  it("does not sign a message twice with the same d= and s=", async () => {
    // Re-submit the signed message as it arrived; the relay adds only its Received line.
    const raw = Buffer.from((await received("X-Case: plain")).bytes).toString("utf8");
    const sent = await world.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: ["again@dest.test"],
      raw,
    });
    assert.equal(sent.status, 202);
    await world.destination.waitFor((m) => m.some((r) => r.recipients.includes("again@dest.test")));
    const again = world.destination.messages.find((r) => r.recipients.includes("again@dest.test"))!;
    assert.equal(header("DKIM-Signature", again.bytes), 2, "still one RSA and one Ed25519 signature");
    const result = await dkimpy(world, again.bytes);
    assert.deepEqual(result.signatures.map((s) => s.ok), [true, true]);
  });

  it("does not sign mail from a domain it holds no key for", async () => {
    await smtpSend(
      world.relay.smtpPort,
      "a@dest.test",
      "t@dest.test",
      "From: a@dest.test\r\nTo: t@dest.test\r\nX-Case: unsigned\r\n\r\nx\r\n",
    );
    const message = await received("X-Case: unsigned");
    assert.equal(header("DKIM-Signature", message.bytes), 0);
  });

  it("rotates over the API: the new key signs once its record is visible; the old one stays listed", async () => {
    const rotated = await world.api("POST", "/v1/domains/sender.test/dkim/rotate");
    assert.equal(rotated.status, 200, JSON.stringify(rotated.json));
    assert.doesNotMatch(JSON.stringify(rotated.json), /PRIVATE KEY/);
    const newKeys: { selector: string; algorithm: string; state: string }[] = rotated.json.new_keys;
    assert.deepEqual(newKeys.map((k) => [k.algorithm, k.state]), [["rsa", "pending"], ["ed25519", "pending"]]);

    // Not yet published: mail is still signed with the old selectors.
    const oldSelectors = records.filter((r) => r.purpose === "dkim").map((r) => r.name.split(".")[0]);
    await smtpSend(
      world.relay.smtpPort,
      "a@sender.test",
      "t@dest.test",
      "From: a@sender.test\r\nTo: t@dest.test\r\nX-Case: before-switch\r\n\r\nx\r\n",
    );
    const before = await dkimpy(world, (await received("X-Case: before-switch")).bytes);
    assert.deepEqual(before.signatures.map((s) => s.s), oldSelectors);

    const view = await world.api("GET", "/v1/domains/sender.test");
    publish(view.json.records);
    const check = await world.api("POST", "/v1/domains/sender.test/check");
    assert.equal(check.status, 200);
    assert.equal(check.json.ok, true, JSON.stringify(check.json, null, 1));
    const after = await world.api("GET", "/v1/domains/sender.test");
    const states = Object.fromEntries(after.json.keys.map((k: any) => [k.selector, k.state]));
    for (const k of newKeys) assert.equal(states[k.selector], "active");
    for (const s of oldSelectors) assert.equal(states[s!], "retiring");
    const still = after.json.records.filter((r: any) => r.key_state === "retiring");
    assert.equal(still.length, 2);
    for (const r of still) {
      assert.ok(Date.parse(r.needed_until) > Date.now() + 6 * 86_400_000, "kept for the grace period");
    }

    await smtpSend(
      world.relay.smtpPort,
      "a@sender.test",
      "t@dest.test",
      "From: a@sender.test\r\nTo: t@dest.test\r\nX-Case: after-switch\r\n\r\nx\r\n",
    );
    const rotatedResult = await dkimpy(world, (await received("X-Case: after-switch")).bytes);
    assert.deepEqual(rotatedResult.signatures.map((s) => [s.s, s.ok]), newKeys.map((k) => [k.selector, true]));
  });
});
