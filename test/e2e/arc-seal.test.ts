// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * ARC sealing by the real relay (RFC 8617), checked by an independent
 * verifier: mail from outside the relay networks to RELAY_BOUNCE_DOMAIN is
 * checked, stamped and forwarded with an ARC set signed by the active RSA
 * key of RELAY_ARC_DOMAIN from the DKIM key store; dkimpy's arc_verify
 * (Debian python3-dkim) validates the chain as the destination received it,
 * looking keys up in the DNS fixture with dnspython.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { after, before, describe, it } from "node:test";
import { type Destination, startDestination } from "../fixtures/smtp-destination.ts";
import { dkimSigned, message, rsaKey } from "../helpers/mail-auth.ts";
import { dkimpyMissing, FIXTURE_DNSFUNC } from "../helpers/dkimpy.ts";
import { PYTHON, runPeer } from "../helpers/peers.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

const dkimpyUnavailable = dkimpyMissing(["dkim", "dns.resolver"], "python3-dkim python3-dnspython");

/** arc_verify on the message from stdin; prints the chain's result and each set's instance. */
const ARC_VERIFY = `${FIXTURE_DNSFUNC}cv, results, comment = dkim.arc_verify(sys.stdin.buffer.read(), dnsfunc=dnsfunc)
def text(v):
    return v.decode() if isinstance(v, bytes) else v
print(json.dumps({'cv': text(cv), 'comment': text(comment), 'results': [{k.decode() if isinstance(k, bytes) else k: text(v) if isinstance(v, (bytes, str)) else v for k, v in x.items()} for x in results]}))
`;

describe("ARC: sealed by the relay, verified by dkimpy", { skip: dkimpyUnavailable }, () => {
  let world: World;
  let inbox: Destination;
  const senderKey = rsaKey();
  const zone: Record<string, any> = {
    ...defaultZone(),
    "sender.test": { TXT: ["v=spf1 ip4:127.0.0.1 -all"] },
    "_dmarc.sender.test": { TXT: ["v=DMARC1; p=reject"] },
    "sel._domainkey.sender.test": { TXT: [senderKey.record] },
  };
  let env: Record<string, string>;
  const arrived = async (marker: string) => {
    await inbox.waitFor((m) => m.some((r) => r.data.includes(marker)));
    return inbox.messages.find((r) => r.data.includes(marker))!;
  };
  const send = async (marker: string) => {
    const signed = await dkimSigned(message("a@sender.test", marker), "sender.test", "sel", senderKey);
    const replies = await sendMail(world.relay.smtpPort, "bounce@sender.test", ["x@bounces.relay.test"], signed);
    assert.match(replies.at(-2)!, /^250 /, replies.join("\n"));
    return arrived(marker);
  };

  before(async () => {
    inbox = await startDestination();
    world = await startWorld({
      env: {
        RELAY_BOUNCE_DOMAIN: "bounces.relay.test",
        RELAY_RELAY_NETWORKS: "10.0.0.0/8",
        RELAY_ROUTES: `bounces.relay.test=127.0.0.1:${inbox.port}`,
        RELAY_ARC_DOMAIN: "arc.relay.test",
      },
      zone,
    });
    env = { RELAY_DNS_SERVERS: `127.0.0.1:${world.dns.port}` };
  });
  after(async () => {
    await world?.close();
    await inbox?.close();
  });

  it("without a key for RELAY_ARC_DOMAIN, mail is forwarded unsealed", async () => {
    const got = await send("before any key");
    assert.doesNotMatch(got.data, /^ARC-/im);
    assert.match(got.data, /^Authentication-Results: relay\.test;/m);
  });

  it("with an RSA key of RELAY_ARC_DOMAIN (and an Ed25519 one, never used), an ARC set i=1 that arc_verify passes", {
    timeout: 60_000,
  }, async () => {
    const added = await runRelay(["domains", "add", "arc.relay.test", "--algorithm", "both", "--json"], {
      dataDir: world.relay.dataDir,
      env,
    });
    assert.equal(added.code, 0, added.stderr);
    const records: { name: string; type: string; value: string; purpose: string }[] = JSON.parse(added.stdout).records;
    const dkim = records.filter((r) => r.purpose === "dkim");
    assert.equal(dkim.length, 2);
    for (const r of dkim) zone[r.name] = { TXT: [r.value] };
    world.dns.setZone(zone);
    const rsaSelector = dkim.find((r) => r.value.includes("k=rsa"))!.name.split(".")[0];

    // The key cache of the signer is 5 s; the first message above may have cached "no key".
    let sent = 0;
    const got = await waitUntil(
      () => send(`sealed ${sent++}`),
      (got) => /^ARC-Seal:/m.test(got.data),
      { what: "a message with an ARC set (seen: the last message)", timeout: 30_000, every: 500 },
    );
    const head = got.data.slice(0, got.data.indexOf("\r\n\r\n"));
    const field = (name: string) => new RegExp(`^${name}:(.*(?:\\r\\n[ \\t].*)*)`, "im").exec(head)?.[1] ?? "";
    assert.match(field("ARC-Seal"), /\bi=1;/, head);
    assert.match(field("ARC-Seal"), /\bcv=none\b/);
    assert.match(field("ARC-Seal"), /\bd=arc\.relay\.test\b/);
    assert.match(field("ARC-Seal"), new RegExp(`\\bs=${rsaSelector}\\b`));
    assert.match(field("ARC-Seal"), /\ba=rsa-sha256\b/);
    assert.match(field("ARC-Message-Signature"), /\bi=1;/);
    assert.match(field("ARC-Message-Signature"), /\bd=arc\.relay\.test\b/);
    assert.match(field("ARC-Authentication-Results"), /^\s*i=1;\s*relay\.test;/);
    assert.match(field("ARC-Authentication-Results"), /\bdkim=pass header\.d=sender\.test\b/);
    assert.match(field("ARC-Authentication-Results"), /\bdmarc=pass\b/);
    for (const name of ["ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results"]) {
      assert.equal((head.match(new RegExp(`^${name}:`, "gim")) ?? []).length, 1, `one ${name}`);
    }

    const result = await runPeer(PYTHON, ["-c", ARC_VERIFY, String(world.dns.port)], { input: got.bytes });
    assert.equal(result.code, 0, result.stderr);
    const verdict = JSON.parse(result.stdout);
    assert.equal(verdict.cv, "pass", `${result.stdout}\n${head}`);
    assert.equal(verdict.results.length, 1);
    assert.equal(verdict.results[0].instance, 1);

    // The verifier is not a rubber stamp: the same message with its body changed fails.
    const tampered = Buffer.from(got.data.replace(/sealed \d+/g, "changed"), "latin1");
    const broken = await runPeer(PYTHON, ["-c", ARC_VERIFY, String(world.dns.port)], { input: tampered });
    assert.equal(broken.code, 0, broken.stderr);
    assert.equal(JSON.parse(broken.stdout).cv, "fail", broken.stdout);

    // The received event says it was sealed.
    const events = await world.events();
    assert.ok(
      events.some((e) => e.type === "received" && e.auth?.arc_sealed === true),
      "a received event with auth.arc_sealed",
    );
  });
});
