// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * RELAY_SENDER_POLICY and return-path alignment, end to end against the real
 * relay: API keys and SMTP AUTH users (nodemailer as the client, over
 * STARTTLS, from outside RELAY_RELAY_NETWORKS) may send only From verified
 * sending domains; with RELAY_BOUNCE_DOMAIN under the From domain's
 * organizational domain, the destination sees a VERP envelope sender there.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { submitWithAuth } from "../helpers/authenticated-submit.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

async function apiKey(world: World, domains?: string): Promise<string> {
  const created = await runRelay([
    "keys",
    "create",
    "--scope",
    "send",
    "--scope",
    "read",
    ...(domains ? ["--domains", domains] : []),
    "--json",
  ], {
    dataDir: world.relay.dataDir,
  });
  assert.equal(created.code, 0, created.stderr);
  return JSON.parse(created.stdout).token;
}

async function send(world: World, token: string, body: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(world.relay.url("/v1/messages"), {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

/** One message over SMTP with STARTTLS + AUTH PLAIN; resolves with the final reply or the refusal. */
function smtpSubmit(world: World, user: string, password: string, from: string, marker: string) {
  return submitWithAuth({
    port: world.relay.smtpPort,
    user,
    password,
    mailFrom: `${user}@sender.test`,
    rcptTo: ["friend@dest.test"],
    raw: `From: ${from}\r\nTo: friend@dest.test\r\nSubject: ${marker}\r\n\r\nhello\r\n`,
  });
}

const receivedCount = async (world: World) => (await world.events()).filter((e) => e.type === "received").length;

describe("sender policy: verified (the default)", () => {
  let world: World;
  let token: string;
  before(async () => {
    // Loopback is outside the relay networks: SMTP clients must AUTH, and so fall under the policy.
    world = await startWorld({ env: { RELAY_RELAY_NETWORKS: "10.0.0.0/8" } });
    token = await apiKey(world);
    const added = await runRelay(["users", "add", "alice", "--domains", "sender.test"], {
      dataDir: world.relay.dataDir,
      input: "alice's long secret\n",
    });
    assert.equal(added.code, 0, added.stderr);
  });
  after(async () => {
    await world?.close();
  });

  it("an API key sending From an unverified domain is 403 naming the field, and nothing is queued", async () => {
    const structured = await send(world, token, {
      from: "A <a@sender.test>",
      to: ["t@dest.test"],
      subject: "unverified",
      text: "x",
    });
    assert.equal(structured.status, 403, JSON.stringify(structured.json));
    assert.equal(structured.json.title, "sender domain not allowed");
    assert.equal(structured.json.detail, "sender domain sender.test is not a verified sending domain");
    assert.deepEqual(structured.json.errors.map((e: any) => e.field), ["from"]);
    const raw = await send(world, token, {
      mail_from: "a@sender.test",
      rcpt_to: ["t@dest.test"],
      raw: "From: a@sender.test\nSubject: raw\n\nx\n",
    });
    assert.equal(raw.status, 403);
    assert.deepEqual(raw.json.errors.map((e: any) => e.field), ["raw"]);
    assert.equal(await receivedCount(world), 0);
  });

  it("an SMTP AUTH user sending From an unverified domain gets 550 5.7.1 after the data, and nothing is queued", async () => {
    const refused = await smtpSubmit(
      world,
      "alice",
      "alice's long secret",
      "Alice <alice@sender.test>",
      "smtp unverified",
    );
    assert.equal(refused.ok, false);
    assert.equal(refused.code, 550, refused.response);
    assert.match(refused.response, /^550 5\.7\.1 sender domain sender\.test is not a verified sending domain/);
    assert.equal(await receivedCount(world), 0);
  });

  it("the admin token is the operator's: not checked", async () => {
    const sent = await world.api("POST", "/v1/messages", {
      from: "a@unverified.test",
      to: ["admin@dest.test"],
      subject: "admin",
      text: "x",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    await world.destination.waitFor((m) => m.some((r) => r.recipients.includes("admin@dest.test")));
  });

  it("after domains add, the DKIM record published and a check: accepted over HTTP and SMTP, and delivered", async () => {
    // Added but not yet seen in DNS: still refused.
    const added = await runRelay(["domains", "add", "sender.test", "--json"], {
      dataDir: world.relay.dataDir,
      env: { RELAY_DNS_SERVERS: `127.0.0.1:${world.dns.port}` },
    });
    assert.equal(added.code, 0, added.stderr);
    const early = await send(world, token, {
      from: "a@sender.test",
      to: ["t@dest.test"],
      subject: "too early",
      text: "x",
    });
    assert.equal(early.status, 403);

    world.publish(JSON.parse(added.stdout).records);
    const checked = await runRelay(["domains", "check", "sender.test"], {
      dataDir: world.relay.dataDir,
      env: { RELAY_DNS_SERVERS: `127.0.0.1:${world.dns.port}` },
    });
    assert.match(checked.stdout, /^PASS DKIM .*_domainkey\.sender\.test:/m, checked.stdout);
    const shown = await runRelay(["domains", "show", "sender.test", "--json"], { dataDir: world.relay.dataDir });
    assert.ok(Date.parse(JSON.parse(shown.stdout).verified_at) > 0);

    const sent = await send(world, token, {
      from: "A <a@sender.test>",
      to: ["api-ok@dest.test"],
      subject: "verified api",
      text: "x",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const smtp = await smtpSubmit(world, "alice", "alice's long secret", "Alice <alice@sender.test>", "verified smtp");
    assert.equal(smtp.ok, true, smtp.response);
    assert.match(smtp.response, /^250 /);
    await world.destination.waitFor((m) =>
      m.some((r) => r.recipients.includes("api-ok@dest.test")) &&
      m.some((r) => r.data.includes("Subject: verified smtp"))
    );
    const viaSmtp = world.destination.messages.find((r) => r.data.includes("Subject: verified smtp"))!;
    assert.match(viaSmtp.data, /^DKIM-Signature:.* d=sender\.test;/ms, "signed by the verified domain's key");
  });

  it("a verified domain outside the key's or user's grant is still refused", async () => {
    const limited = await apiKey(world, "other.test");
    const refused = await send(world, limited, {
      mail_from: "a@other.test",
      rcpt_to: ["t@dest.test"],
      raw: "From: a@sender.test\n\nx\n",
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.json.detail, "sender domain sender.test is not allowed for this key");
    assert.deepEqual(refused.json.errors.map((e: any) => e.field), ["raw"]);
    const smtp = await smtpSubmit(world, "alice", "alice's long secret", "x@other.test", "outside the grant");
    assert.equal(smtp.code, 550);
    assert.match(smtp.response, /^550 5\.7\.1 sender domain other\.test is not allowed for this user/);
  });
});

describe("sender policy: RELAY_SENDER_POLICY=any", () => {
  let world: World;
  before(async () => {
    world = await startWorld({ env: { RELAY_SENDER_POLICY: "any", RELAY_RELAY_NETWORKS: "10.0.0.0/8" } });
  });
  after(async () => {
    await world?.close();
  });

  it("accepts an API key's mail From a domain the relay does not know", async () => {
    const token = await apiKey(world);
    const sent = await send(world, token, {
      from: "a@unverified.test",
      to: ["any@dest.test"],
      subject: "any",
      text: "x",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    await world.destination.waitFor((m) => m.some((r) => r.recipients.includes("any@dest.test")));
  });
});

describe("return path aligned with RELAY_BOUNCE_DOMAIN", () => {
  let world: World;
  before(async () => {
    world = await startWorld({
      zone: { ...defaultZone(), "example.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] } },
      env: { RELAY_BOUNCE_DOMAIN: "bounces.example.test" },
    });
  });
  after(async () => {
    await world?.close();
  });

  it("the destination sees MAIL FROM:<b.<message>.<recipient>.<tag>@bounces.example.test>, one per recipient; From is unchanged", async () => {
    const sent = await world.api("POST", "/v1/messages", {
      from: "News <news@example.test>",
      to: ["one@dest.test", "two@dest.test"],
      subject: "aligned return path",
      text: "x",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const id: string = sent.json.id;
    const got = await world.destination.waitFor((m) =>
      m.filter((r) => r.data.includes("Subject: aligned return path")).length === 2
    );
    const mine = got.filter((r) => r.data.includes("Subject: aligned return path"));
    const senders = mine.map((r) => r.mailFrom);
    for (const [i, r] of mine.entries()) {
      assert.match(r.mailFrom, new RegExp(`^b\\.${id}\\.[0-9a-z]+\\.[a-z2-7]{10}@bounces\\.example\\.test$`));
      assert.ok(r.mailFrom.split("@")[0]!.length <= 64);
      assert.equal(r.recipients.length, 1, `one transaction per recipient (${i})`);
      assert.match(r.data, /\r\nFrom: News <news@example\.test>\r\n/);
    }
    assert.notEqual(senders[0], senders[1], "each recipient has its own return path");
    const view = await world.api("GET", `/v1/messages/${id}`);
    assert.equal(view.json.mail_from, "news@example.test", "the submitter's envelope sender stays stored");
  });

  it("a From domain under another organizational domain keeps its envelope sender", async () => {
    const sent = await world.api("POST", "/v1/messages", {
      from: "a@sender.test",
      to: ["kept@dest.test"],
      subject: "not aligned",
      text: "x",
    });
    assert.equal(sent.status, 202);
    const got = await world.destination.waitFor((m) => m.some((r) => r.recipients.includes("kept@dest.test")));
    assert.equal(got.find((r) => r.recipients.includes("kept@dest.test"))!.mailFrom, "a@sender.test");
  });

  it("a DSN the relay generates goes to the original sender, not to the VERP address", async () => {
    const sent = await world.api("POST", "/v1/messages", {
      from: "news@example.test",
      to: ["nouser@dest.test"],
      subject: "will bounce",
      text: "x",
    });
    assert.equal(sent.status, 202);
    const got = await world.destination.waitFor((m) =>
      m.some((r) => r.mailFrom === "" && r.recipients.includes("news@example.test"))
    );
    const dsn = got.find((r) => r.mailFrom === "" && r.recipients.includes("news@example.test"))!;
    assert.match(dsn.data, /nouser@dest\.test/);
    assert.match(dsn.data, /Content-Type: multipart\/report/i);
  });

  it("relay domains add documents the return path and says when alignment is impossible", async () => {
    const env = { RELAY_BOUNCE_DOMAIN: "bounces.example.test" };
    const aligned = await runRelay(["domains", "add", "example.test"], { dataDir: world.relay.dataDir, env });
    assert.equal(aligned.code, 0, aligned.stderr);
    assert.match(aligned.stdout, /bounces\.example\.test\.\s+MX\s+10 relay\.test/);
    assert.match(aligned.stdout, /envelope sender b\.<message>\.<recipient>\.<tag>@bounces\.example\.test \(VERP/);
    const other = await runRelay(["domains", "add", "sender.test"], { dataDir: world.relay.dataDir, env });
    assert.match(
      other.stdout,
      /alignment impossible: bounces\.example\.test is not under sender\.test's organizational domain/,
    );
    const checked = await runRelay(["domains", "check", "sender.test"], {
      dataDir: world.relay.dataDir,
      env: { ...env, RELAY_DNS_SERVERS: `127.0.0.1:${world.dns.port}` },
    });
    assert.match(
      checked.stdout,
      /Return path: alignment impossible: .*configure a bounce domain under the From domain/,
    );
  });
});
