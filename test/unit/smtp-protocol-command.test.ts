import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseCommand, parseMailFrom, parseRcptTo } from "../../src/smtp/protocol/command.ts";
import { decodeXtext, encodeXtext } from "../../src/smtp/protocol/params.ts";

const mailFails = (args: string) => {
  const r = parseMailFrom(args);
  assert.ok(!r.ok, `${args} should fail`);
  return `${r.reply.code} ${r.reply.enhanced}`;
};

describe("command parsing (RFC 5321 4.1.1)", () => {
  it("splits verb and arguments, case-insensitive verb", () => {
    assert.deepEqual(parseCommand("mail FROM:<a@b>"), { verb: "MAIL", args: "FROM:<a@b>" });
    assert.deepEqual(parseCommand("QUIT"), { verb: "QUIT", args: "" });
  });

  it("parses MAIL FROM with the null path and parameters", () => {
    const r = parseMailFrom("FROM:<> SIZE=1234 BODY=7bit RET=HDRS ENVID=abc+2Bdef");
    assert.ok(r.ok);
    assert.equal(r.from, null);
    assert.deepEqual(r.params, { size: 1234, body: "7BIT", ret: "HDRS", envid: "abc+def" });
    const spaced = parseMailFrom("from: <A@B.example>");
    assert.ok(spaced.ok);
    assert.deepEqual(spaced.from, { local: "A", domain: "b.example" });
  });

  it("ignores a well-formed source route (RFC 5321 4.1.2, C)", () => {
    const r = parseMailFrom("FROM:<@relay.one,@relay.two:user@x.test>");
    assert.ok(r.ok);
    assert.deepEqual(r.from, { local: "user", domain: "x.test" });
    const rcpt = parseRcptTo("TO:<@Relay-1.example:b@x.test> NOTIFY=NEVER", false, "mx.test");
    assert.ok(rcpt.ok);
    assert.deepEqual(rcpt.to, { local: "b", domain: "x.test" });
    assert.deepEqual(rcpt.params, { notify: ["NEVER"] });
    const quoted = parseRcptTo('TO:<@a.test:"x:y"@x.test>', false, "mx.test");
    assert.ok(quoted.ok && quoted.to.local === "x:y");
  });

  it("refuses a malformed source route: 501 5.1.7 for MAIL, 501 5.1.3 for RCPT", () => {
    const malformed = [
      "<@:u@d.test>", // empty at-domain
      "<@,@a.test:u@d.test>", // empty first at-domain
      "<@a.test,:u@d.test>", // empty last at-domain
      "<@a.test,,@b.test:u@d.test>",
      "<@a.test,b.test:u@d.test>", // "@" missing
      "<@a.test, @b.test:u@d.test>", // no blanks in a route
      "<@a.test u@d.test>", // no ":"
      "<@a.test>",
      "<@a..test:u@d.test>",
      "<@-a.test:u@d.test>",
      "<@a_b.test:u@d.test>",
      "<@[192.0.2.1]:u@d.test>", // At-domain = "@" Domain: no address literal
      "<@a.test:>",
      "<@a.test:@b.test:u@d.test>",
    ];
    for (const path of malformed) {
      assert.equal(mailFails(`FROM:${path}`), "501 5.1.7", path);
      const rcpt = parseRcptTo(`TO:${path}`, false, "mx.test");
      assert.ok(!rcpt.ok, path);
      assert.equal(`${rcpt.reply.code} ${rcpt.reply.enhanced}`, "501 5.1.3", path);
    }
  });

  it("counts a source route in the 256-octet path limit (RFC 5321 4.5.3.1.3)", () => {
    const route = `@${"r".repeat(60)}.test`;
    const mailbox = `u@${"d".repeat(60)}.test`; // 67 octets
    const tooLong = `<${route},${route},${route}:${mailbox}>`; // 1 + 3*66 + 2 + 1 + 67 + 1 = 270 octets
    assert.equal(mailFails(`FROM:${tooLong}`), "501 5.1.7");
    assert.ok(parseMailFrom(`FROM:<${route},${route}:${mailbox}>`).ok, "203 octets");
  });

  it("allows UTF-8 paths only with SMTPUTF8: 553 5.6.7 without it (RFC 6531 3.5)", () => {
    assert.equal(mailFails("FROM:<josé@x.test>"), "553 5.6.7");
    assert.equal(mailFails("FROM:<a@bücher.test> SIZE=10"), "553 5.6.7");
    const r = parseMailFrom("FROM:<josé@x.test> SMTPUTF8");
    assert.ok(r.ok);
    assert.equal(r.params.smtputf8, true);
    const rcpt = parseRcptTo("TO:<zoë@x.test>", true, "mx.test");
    assert.ok(rcpt.ok);
    const refused = parseRcptTo("TO:<zoë@x.test>", false, "mx.test");
    assert.ok(!refused.ok);
    assert.equal(`${refused.reply.code} ${refused.reply.enhanced}`, "553 5.6.7");
    const routed = parseRcptTo("TO:<@bücher.test:b@x.test>", false, "mx.test");
    assert.ok(!routed.ok && routed.reply.code === 553, "UTF-8 in the route counts too");
    // Malformed is a syntax error whatever its characters.
    assert.equal(mailFails("FROM:<jo sé@x.test>"), "501 5.1.7");
    const bad = parseRcptTo("TO:<zoë@@x.test>", false, "mx.test");
    assert.ok(!bad.ok && bad.reply.code === 501);
  });

  it("answers the right codes for bad syntax and parameters", () => {
    assert.equal(mailFails("FROM a@b"), "501 5.5.2");
    assert.equal(mailFails("FROM:a@b.test"), "501 5.1.7");
    assert.equal(mailFails("FROM:<a@b.test"), "501 5.1.7");
    assert.equal(mailFails("FROM:<a@b.test>SIZE=1"), "501 5.1.7");
    assert.equal(mailFails("FROM:<a@b.test> FOO=1"), "555 5.5.4");
    assert.equal(mailFails("FROM:<a@b.test> BODY=BINARYMIME"), "555 5.5.4");
    assert.equal(mailFails("FROM:<a@b.test> SIZE=big"), "501 5.5.4");
    assert.equal(mailFails("FROM:<a@b.test> SIZE=1 SIZE=2"), "501 5.5.4");
    assert.equal(mailFails("FROM:<a@b.test> SMTPUTF8=yes"), "501 5.5.4");
    assert.equal(mailFails("FROM:<a@b.test> RET=ALL"), "501 5.5.4");
    assert.equal(mailFails("FROM:<a@b.test> ENVID=a+zz"), "501 5.5.4");
  });

  it("parses RCPT TO with DSN parameters", () => {
    const r = parseRcptTo("TO:<b@x.test> NOTIFY=success,delay ORCPT=rfc822;b+40x.test", false, "mx.test");
    assert.ok(r.ok);
    assert.deepEqual(r.params, { notify: ["SUCCESS", "DELAY"], orcpt: "rfc822;b@x.test" });
    for (const bad of ["NOTIFY=NEVER,SUCCESS", "NOTIFY=SOMETIMES", "NOTIFY=SUCCESS,SUCCESS", "ORCPT=nosemicolon"]) {
      const x = parseRcptTo(`TO:<b@x.test> ${bad}`, false, "mx.test");
      assert.ok(!x.ok, bad);
      assert.equal(x.reply.code, 501);
    }
    const unknown = parseRcptTo("TO:<b@x.test> FOO", false, "mx.test");
    assert.ok(!unknown.ok && unknown.reply.code === 555 && unknown.reply.enhanced === "5.5.4");
  });

  it("maps <Postmaster> to the local domain and refuses the null path", () => {
    const r = parseRcptTo("TO:<Postmaster>", false, "mx.test");
    assert.ok(r.ok);
    assert.deepEqual(r.to, { local: "postmaster", domain: "mx.test" });
    const params = parseRcptTo("TO:<POSTMASTER> NOTIFY=NEVER", false, "mx.test");
    assert.ok(params.ok && params.to.local === "postmaster" && params.params.notify?.[0] === "NEVER");
    // Whatever the host name looks like (RELAY_HOSTNAME defaults to the system's): it is not parsed as an address.
    for (const host of ["12345", "10.0.0.5", "relay_1"]) {
      const any = parseRcptTo("TO:<postmaster>", false, host);
      assert.ok(any.ok && any.to.domain === host, host);
    }
    const glued = parseRcptTo("TO:<postmaster>NOTIFY=NEVER", false, "mx.test");
    assert.ok(!glued.ok && glued.reply.code === 501);
    const n = parseRcptTo("TO:<>", false, "mx.test");
    assert.ok(!n.ok && n.reply.enhanced === "5.1.3");
  });

  it("round-trips xtext (RFC 3461 4)", () => {
    assert.equal(encodeXtext("a+b=c d"), "a+2Bb+3Dc+20d");
    assert.equal(decodeXtext("a+2Bb+3Dc+20d"), "a+b=c d");
    assert.equal(decodeXtext("a+2b"), undefined);
  });
});
