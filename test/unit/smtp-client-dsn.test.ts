import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { SmtpClientSession } from "../../src/smtp/client/index.ts";
import {
  dsnMailParameters,
  dsnRecipientParameters,
  encodeXtext,
  orcptParameter,
} from "../../src/smtp/client/extensions.ts";
import { decodeXtext } from "../../src/smtp/protocol/params.ts";
import { type Destination, type DestinationOptions, startDestination } from "../fixtures/smtp-destination.ts";

const MESSAGE = new TextEncoder().encode("Subject: hi\r\n\r\nHello.\r\n");
const started: Destination[] = [];
after(async () => {
  await Promise.all(started.map((d) => d.close()));
});

async function deliver(options: DestinationOptions) {
  const d = await startDestination(options);
  started.push(d);
  const session = await SmtpClientSession.open({ host: d.host, port: d.port, heloName: "relay.test", tls: "none" });
  await session.send(
    {
      mailFrom: "a@sender.test",
      recipients: ["b@dest.test", "c@dest.test"],
      dsn: {
        ret: "HDRS",
        envid: "id+1 x",
        recipients: [{ notify: "SUCCESS,FAILURE", orcpt: "rfc822;B=b@dest.test" }, undefined],
      },
    },
    MESSAGE,
  );
  await session.quit();
  return d.messages[0]!;
}

describe("SMTP client: RFC 3461 parameters", () => {
  test("sent on MAIL and RCPT when the server advertises DSN", async () => {
    const received = await deliver({ dsn: true });
    assert.ok(received.mailParams.includes("RET=HDRS"));
    assert.ok(received.mailParams.includes("ENVID=id+2B1+20x"));
    assert.deepEqual(received.rcptParams, {
      "b@dest.test": ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;B+3Db@dest.test"],
      "c@dest.test": [],
    });
  });

  test("left out when it does not (the server would refuse unknown parameters)", async () => {
    const received = await deliver({});
    assert.deepEqual(received.mailParams.filter((p) => /^(RET|ENVID)=/.test(p)), []);
    assert.deepEqual(received.rcptParams, { "b@dest.test": [], "c@dest.test": [] });
  });

  test("xtext round-trips through the server's decoder, non-ASCII as UTF-8 octets", () => {
    for (const text of ["plain", "a+b=c", "space here", "tab\there", '~!"#']) {
      const encoded = encodeXtext(text);
      assert.match(encoded, /^[\x21-\x7e]*$/);
      assert.doesNotMatch(encoded, /=/);
      assert.equal(decodeXtext(encoded), text);
    }
    assert.equal(encodeXtext("é"), "+C3+A9");
  });

  test("ORCPT: a non-ASCII rfc822 address goes as RFC 6533 utf-8 type; bad input is dropped", () => {
    assert.equal(orcptParameter("rfc822;a@b.test"), "ORCPT=rfc822;a@b.test");
    assert.equal(orcptParameter("rfc822;jö@b.test"), "ORCPT=utf-8;j\\x{F6}@b.test");
    assert.equal(orcptParameter("x y;a@b"), undefined);
    assert.equal(orcptParameter("rfc822;"), undefined);
  });

  test("NOTIFY is checked before it is sent; ENVID longer than 100 xtext characters is dropped", () => {
    assert.deepEqual(dsnRecipientParameters({ notify: ["delay", "failure"] }), ["NOTIFY=DELAY,FAILURE"]);
    assert.deepEqual(dsnRecipientParameters({ notify: "NEVER" }), ["NOTIFY=NEVER"]);
    assert.deepEqual(dsnRecipientParameters({ notify: "SOMETIMES" }), []);
    assert.deepEqual(dsnMailParameters({ envid: "x".repeat(101) }), []);
    assert.deepEqual(dsnMailParameters({ ret: "FULL", envid: "e" }), ["RET=FULL", "ENVID=e"]);
  });
});
