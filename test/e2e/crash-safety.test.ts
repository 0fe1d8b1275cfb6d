import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";
import { type Destination, startDestination } from "../fixtures/smtp-destination.ts";
import { freePort, type RelayProcess, startRelay } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { defaultZone, relayApi } from "../helpers/world.ts";

describe("crash safety and shutdown", () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  async function relayWith(dns: DnsServer, mxPort: number, dataDir?: string): Promise<RelayProcess> {
    const relay = await startRelay({
      dataDir,
      env: { RELAY_DNS_SERVERS: `127.0.0.1:${dns.port}`, RELAY_MX_PORT: String(mxPort), RELAY_RETRY_SCHEDULE: "1s" },
    });
    cleanups.push(() => relay.cleanup());
    return relay;
  }

  it("kill -9 right after 250, then a restart: the message is still delivered", async () => {
    const dns = await startDnsServer(defaultZone());
    cleanups.push(() => dns.close());
    // Nothing listens on the MX port yet, so the first relay cannot deliver before it dies.
    const mxPort = await freePort();
    const first = await relayWith(dns, mxPort);
    const replies = await sendMail(
      first.smtpPort,
      "a@sender.test",
      ["survivor@dest.test"],
      "Subject: survives kill -9\r\n\r\nx\r\n",
    );
    assert.match(replies.at(-2)!, /^250 /);
    assert.equal(await first.kill9(), 137);

    const destination: Destination = await startDestination({ port: mxPort });
    cleanups.push(() => destination.close());
    assert.equal(destination.port, mxPort, "the destination took the MX port");
    const second = await relayWith(dns, mxPort, first.dataDir);
    const [message] = await destination.waitFor((m) => m.some((r) => r.data.includes("survives kill -9")), 20_000);
    assert.ok(message);
    assert.deepEqual(destination.messages.find((m) => m.data.includes("survives kill -9"))!.recipients, [
      "survivor@dest.test",
    ]);
    assert.equal(await second.stop(), 0);
  });

  it("SIGTERM exits 0, and a restart resumes every queued recipient", async () => {
    const dns = await startDnsServer(defaultZone());
    cleanups.push(() => dns.close());
    const mxPort = await freePort();
    const relay = await relayWith(dns, mxPort);
    const world = relayApi(relay);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const sent = await world.api("POST", "/v1/messages", {
        mail_from: "a@sender.test",
        rcpt_to: [`q${i}@dest.test`],
        raw: `Subject: queued ${i}\r\n\r\nx\r\n`,
      });
      assert.equal(sent.status, 202);
      ids.push(sent.json.id);
    }
    assert.equal(await relay.stop("SIGTERM"), 0);
    const destination = await startDestination({ port: mxPort });
    cleanups.push(() => destination.close());
    await relayWith(dns, mxPort, relay.dataDir);
    await destination.waitFor((m) => m.filter((r) => r.data.includes("Subject: queued")).length >= 5, 20_000);
    assert.equal(destination.messages.filter((r) => r.data.includes("Subject: queued")).length, 5);
  });
});
