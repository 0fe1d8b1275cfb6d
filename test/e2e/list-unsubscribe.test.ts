/**
 * List-Unsubscribe on bulk mail (issue 14), end to end: the real relay
 * delivers a bulk message to the scripted destination, each recipient its
 * own copy with List-Unsubscribe and List-Unsubscribe-Post under a DKIM
 * signature dkimpy verifies; the link's page changes nothing, its one-click
 * POST (RFC 8058) writes one `unsubscribed` event; transactional mail has
 * neither field.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { dkimpyMissing, FIXTURE_DNSFUNC } from "../helpers/dkimpy.ts";
import { PYTHON, runPeer } from "../helpers/peers.ts";
import { freePorts } from "../helpers/relay-process.ts";
import { startWorld, type World } from "../helpers/world.ts";
import type { Received } from "../fixtures/smtp-destination.ts";

const dkimpyUnavailable = dkimpyMissing(["dkim", "dns.resolver"], "python3-dkim python3-dnspython");

/** The top DKIM-Signature verified by dkimpy, and the header names it signs. */
const VERIFY_TOP = `${FIXTURE_DNSFUNC}message = sys.stdin.buffer.read()
d = dkim.DKIM(message)
ok = d.verify(idx=0, dnsfunc=dnsfunc)
print(json.dumps({'ok': bool(ok), 'h': (d.signature_fields.get(b'h') or b'').decode()}))
`;

const BOUNCE_DOMAIN = "bounces.relay.test";

function headerValue(message: Received, name: string): string | undefined {
  const head = message.data.slice(0, message.data.indexOf("\r\n\r\n") + 2).replace(/\r\n[ \t]+/g, " ");
  return new RegExp(`^${name}: *(.*)$`, "im").exec(head)?.[1];
}

describe("List-Unsubscribe on bulk mail", { skip: dkimpyUnavailable }, () => {
  let world: World;
  let publicUrl: string;
  let bulkId: string;
  const copies = new Map<string, Received>();

  const send = async (priority: string, to: string[], subject: string) => {
    const sent = await world.api("POST", "/v1/messages", {
      from: "news@sender.test",
      to,
      subject,
      text: "hello",
      priority,
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    return sent.json.id as string;
  };
  const linkOf = (message: Received) => /<(http[^>]+)>/.exec(headerValue(message, "List-Unsubscribe") ?? "")?.[1];
  const unsubscribed = async () => (await world.events()).filter((e) => e.type === "unsubscribed");
  const postOneClick = (url: string) =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "List-Unsubscribe=One-Click",
    });

  before(async () => {
    const [smtpPort, httpPort] = await freePorts(2);
    publicUrl = `http://127.0.0.1:${httpPort}`;
    world = await startWorld({
      smtpPort,
      httpPort,
      env: { RELAY_PUBLIC_URL: publicUrl, RELAY_BOUNCE_DOMAIN: BOUNCE_DOMAIN },
    });
    await world.verifySendingDomain("sender.test");
    bulkId = await send("bulk", ["ann@dest.test", "bob@dest.test"], "bulk news");
    await world.destination.waitFor((m) => m.filter((r) => r.data.includes("bulk news")).length === 2);
    for (const r of world.destination.messages.filter((r) => r.data.includes("bulk news"))) {
      assert.equal(r.recipients.length, 1, "a bulk recipient has a transaction of its own");
      copies.set(r.recipients[0]!, r);
    }
  });
  after(async () => {
    await world?.close();
  });

  it("gives each recipient its own https and mailto addresses and the one-click field", () => {
    const ann = copies.get("ann@dest.test")!;
    const bob = copies.get("bob@dest.test")!;
    const value = headerValue(ann, "List-Unsubscribe")!;
    assert.match(
      value,
      new RegExp(`^<${publicUrl}/u/([0-9a-z]+\\.[0-9a-f]{32})>, <mailto:unsubscribe\\+\\1@${BOUNCE_DOMAIN}>$`),
    );
    assert.equal(headerValue(ann, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    assert.notEqual(linkOf(ann), linkOf(bob));
  });

  it("signs both fields: dkimpy verifies the top signature, which names them", async () => {
    assert.equal(copies.size, 2);
    for (const copy of copies.values()) {
      const result = await runPeer(PYTHON, ["-c", VERIFY_TOP, String(world.dns.port)], { input: copy.bytes });
      assert.equal(result.code, 0, result.stderr);
      const { ok, h } = JSON.parse(result.stdout);
      assert.equal(ok, true, copy.data.slice(0, 2000));
      const names = h.toLowerCase().split(":");
      assert.ok(names.includes("list-unsubscribe") && names.includes("list-unsubscribe-post"), h);
    }
  });

  it("shows a page on GET that unsubscribes no one", async () => {
    const page = await fetch(linkOf(copies.get("bob@dest.test")!)!);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<form method="post"/);
    assert.match(html, /name="List-Unsubscribe" value="One-Click"/);
    assert.equal(page.headers.get("set-cookie"), null);
    assert.deepEqual(await unsubscribed(), []);
  });

  it("answers an unknown or altered token with 404 and changes nothing", async () => {
    const link = linkOf(copies.get("ann@dest.test")!)!;
    const altered = link.replace(/[0-9a-f]$/, (c) => (c === "0" ? "1" : "0"));
    assert.equal((await postOneClick(altered)).status, 404);
    assert.equal((await fetch(`${publicUrl}/u/nothing`)).status, 404);
    assert.deepEqual(await unsubscribed(), []);
  });

  it("turns a one-click POST into one unsubscribed event, however often it comes", async () => {
    const link = linkOf(copies.get("ann@dest.test")!)!;
    const first = await postOneClick(link);
    assert.equal(first.status, 200);
    assert.equal((await postOneClick(link)).status, 200);
    const events = await unsubscribed();
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.equal(events[0].message_id, bulkId);
    assert.equal(events[0].recipient, "ann@dest.test");
    assert.equal(events[0].via, "one-click");
    // The unsubscribe suppressed the address for the sending domain: the next message to it is not sent.
    const next = await world.api("POST", "/v1/messages", {
      from: "news@sender.test",
      to: ["ann@dest.test"],
      subject: "after the unsubscribe",
      text: "hello",
      priority: "bulk",
    });
    assert.equal(next.status, 202, JSON.stringify(next.json));
    assert.equal(next.json.recipients[0].status, "suppressed");
  });

  it("adds neither field to transactional mail", async () => {
    await send("transactional", ["cat@dest.test"], "a receipt");
    await world.destination.waitFor((m) => m.some((r) => r.data.includes("a receipt")));
    const receipt = world.destination.messages.find((r) => r.data.includes("a receipt"))!;
    assert.equal(headerValue(receipt, "List-Unsubscribe"), undefined);
    assert.equal(headerValue(receipt, "List-Unsubscribe-Post"), undefined);
  });
});
