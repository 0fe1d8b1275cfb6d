import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Reply } from "../../src/core/reply.ts";
import { matchAutomation } from "../../src/shaping/automation.ts";
import { formatShapingError, loadShapingRules } from "../../src/shaping/load.ts";
import { shippedShaping } from "../../src/shaping/shipped.ts";
import { wireReply as wire } from "../helpers/smtp-reply.ts";

describe("matchAutomation on the providers' real replies, with the shipped rules", () => {
  const rules = shippedShaping().rules.automation;
  const ruleFor = (reply: Reply, provider: string | undefined) => matchAutomation(rules, reply, provider)?.name;

  it("Gmail's multi-line 421 4.7.28 unusual rate of unsolicited mail throttles Google", () => {
    const reply = wire(
      "421-4.7.28 [203.0.113.42      15] Our system has detected an unusual rate of",
      "421-4.7.28 unsolicited mail originating from your IP address. To protect our",
      "421-4.7.28 users from spam, mail sent from your IP address has been temporarily",
      "421-4.7.28 rate limited. Please visit",
      "421-4.7.28  https://support.google.com/mail/?p=UnsolicitedRateLimitError to",
      "421 4.7.28 review our Bulk Email Senders Guidelines. d2e1a72fcca58-7ff1a1b2c3d4si12345b3a.123 - gsmtp",
    );
    const rule = matchAutomation(rules, reply, "google");
    assert.equal(rule?.name, "google-unsolicited-rate");
    assert.equal(rule?.action.kind, "throttle");
  });

  it("Gmail's 421 4.7.0 try again later, closing connection throttles its connections", () => {
    const reply = wire(
      "421 4.7.0 Try again later, closing connection. (EHLO) 5b1f17b1804b1-43cd0b6e5d2si123456f8f.2 - gsmtp",
    );
    assert.equal(ruleFor(reply, "google"), "google-try-again-later");
  });

  it("Gmail's 450 4.2.1 for one recipient receiving too fast concerns that recipient, not the destination", () => {
    const reply = wire(
      "450-4.2.1 The user you are trying to contact is receiving mail at a rate that",
      "450-4.2.1 prevents additional messages from being delivered. Please resend your",
      "450-4.2.1 message at a later time. If the user is able to receive mail at that",
      "450-4.2.1 time, your message will be delivered. For more information, please",
      "450 4.2.1 visit https://support.google.com/mail/?p=ReceivingRate 41be03b00d2f7-5e1234abcdsi1234567a12.330 - gsmtp",
    );
    assert.equal(ruleFor(reply, "google"), undefined);
  });

  it("Yahoo's [TSS04] suspends Yahoo; the same words from another destination slow that one down", () => {
    const reply = wire(
      "421 4.7.0 [TSS04] Messages from 203.0.113.42 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
    );
    const yahoo = matchAutomation(rules, reply, "yahoo");
    assert.equal(yahoo?.name, "yahoo-deferred-volume-or-complaints");
    assert.deepEqual(yahoo?.action, { kind: "suspend", duration: 2 * 3_600_000 });
    assert.equal(ruleFor(reply, undefined), "ip-temporarily-deferred");
  });

  it("Yahoo's [TS03] and [TSS09], where retrying will not succeed, bounce", () => {
    for (const code of ["TS03", "TSS09"]) {
      const reply = wire(
        `421 4.7.0 [${code}] All messages from 203.0.113.42 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes`,
      );
      assert.deepEqual(matchAutomation(rules, reply, "yahoo")?.action, { kind: "bounce" }, code);
    }
  });

  it("Microsoft's S3150 block list, S775 4.7.650 rate limit, 5.7.606 banned IP and S77719 server busy", () => {
    const cases: [Reply, string][] = [
      [
        wire(
          "550 5.7.1 Unfortunately, messages from [203.0.113.42] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [AM2PEPF0001C717.eurprd05.prod.outlook.com 2024-05-01T10:00:00.000Z 08DC6A1B2C3D4E5F]",
        ),
        "microsoft-block-list",
      ],
      [
        wire(
          "451 4.7.650 The mail server [203.0.113.42] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775) [Name=Protocol Filter Agent][AGT=PFA][MxId=11BAD2A3B4C5D6E7] [DB5PEPF00014B8F.eurprd02.prod.outlook.com 2024-05-01T10:00:00.000Z 08DC6A1B2C3D4E5F]",
        ),
        "microsoft-ip-reputation",
      ],
      [
        wire(
          "550 5.7.606 Access denied, banned sending IP [203.0.113.42]. To request removal from this list please visit https://sender.office.com/ and follow the directions. For more information please go to http://go.microsoft.com/fwlink/?LinkID=526655 AS(1430) [BN8NAM11FT066.eop-nam11.prod.protection.outlook.com 2024-05-01T10:00:00.000Z 08DC6A1B2C3D4E5F]",
        ),
        "microsoft-banned-ip",
      ],
      [
        wire(
          "451 4.7.500 Server busy. Please try again later from [203.0.113.42]. (S77719) [BN8NAM11FT066.eop-nam11.prod.protection.outlook.com]",
        ),
        "microsoft-server-busy",
      ],
    ];
    for (const [reply, name] of cases) assert.equal(ruleFor(reply, "microsoft"), name);
  });

  it("a provider's own rule comes before the rule for any destination that matches as well", () => {
    const orange = wire(
      "421 mwinf5c13 ME Trop de connexions, veuillez verifier votre configuration. Too many connections, slow down. OFR005_104 [104]",
    );
    assert.equal(ruleFor(orange, "orange"), "orange-too-many-connections");
    assert.equal(ruleFor(orange, "free"), "too-many-connections");
  });

  it("Postfix's connection limit, from any destination, slows its connections down", () => {
    const postfix = wire("421 4.7.0 mx.example.net Error: too many connections from 203.0.113.42");
    const rule = matchAutomation(rules, postfix, undefined);
    assert.equal(rule?.name, "too-many-connections");
    assert.deepEqual(rule?.threshold, { matches: 3, within: 3_600_000 });
  });

  it("QQ's frequency limits and iCloud's [HCM1] deferral", () => {
    assert.equal(
      ruleFor(
        wire("550 Ip frequency limited. http://service.mail.qq.com/cgi-bin/help?subtype=1&&id=20022&&no=1000725"),
        "qq",
      ),
      "qq-frequency-limited",
    );
    assert.equal(ruleFor(wire("421 [HCM1] Your mail from 203.0.113.42 was deferred."), "apple"), "apple-deferred");
  });

  it("nothing for a reply that is no failure, or one no rule knows", () => {
    assert.equal(ruleFor(wire("250 2.0.0 OK too many connections were fine"), undefined), undefined);
    assert.equal(
      ruleFor(wire("550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"), "google"),
      undefined,
    );
  });
});

describe("matchAutomation: how a rule's match is read", () => {
  const loaded = loadShapingRules(
    `default:
  connections: 1
  connection_rate: unlimited
  messages_per_connection: 1
  recipients_per_transaction: 1
  message_rate: unlimited
  idle_timeout: 1s
  retry: [1m]
providers:
  example: { mx_suffixes: [example.net] }
automation:
  any:
    match: { code: 421, enhanced: 4.7.0, text: "Slow   DOWN" }
    action: bounce
  across-lines:
    match: { text: "rate of unsolicited mail" }
    action: bounce
  mine:
    provider: example
    match: { regex: '^421 4\\.7\\.0 .*slow down' }
    action: suspend
    duration: 1h
`,
    "rules.yaml",
  );
  assert.ok(loaded.ok, loaded.ok ? "" : loaded.errors.map(formatShapingError).join("\n"));
  const rules = loaded.rules.automation;

  it("every condition given must hold: code, enhanced code and text", () => {
    assert.equal(matchAutomation(rules, wire("421 4.7.0 please slow down"), undefined)?.name, "any");
    assert.equal(matchAutomation(rules, wire("451 4.7.0 please slow down"), undefined), undefined);
    assert.equal(matchAutomation(rules, wire("421 4.7.1 please slow down"), undefined), undefined);
    assert.equal(matchAutomation(rules, wire("421 4.7.0 please go away"), undefined), undefined);
  });

  it("text ignores case and runs of spaces; a regex ignores case and sees code and enhanced code", () => {
    assert.equal(matchAutomation(rules, wire("421 4.7.0 SLOW DOWN"), undefined)?.name, "any");
    assert.equal(matchAutomation(rules, wire("421 4.7.0 slow \t down"), undefined)?.name, "any");
    assert.equal(matchAutomation(rules, wire("421 4.7.0 Slow Down"), "example")?.name, "mine");
  });

  it("text is found across the lines of a multi-line reply", () => {
    const reply = wire("421-4.7.28 an unusual rate of", "421 4.7.28 unsolicited mail");
    assert.equal(matchAutomation(rules, reply, undefined)?.name, "across-lines");
  });

  it("a provider's rule applies to that provider only, before the rules for any destination", () => {
    assert.equal(matchAutomation(rules, wire("421 4.7.0 slow down"), "example")?.name, "mine");
    assert.equal(matchAutomation(rules, wire("421 4.7.0 slow down"), "other")?.name, "any");
  });
});
