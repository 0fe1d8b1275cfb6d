import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createWebhookClient, type LookupHost } from "../../src/events/webhook-post.ts";
import { checkWebhookUrl, refusedAddress } from "../../src/events/webhook-target.ts";
import { makePki, type TestPki } from "../helpers/pki.ts";

describe("webhook URLs and addresses", () => {
  it("refuses the node's own networks unless allowed, and what no connection can reach always", () => {
    for (const address of ["127.0.0.1", "10.0.0.1", "172.16.5.5", "192.168.1.1", "169.254.169.254", "100.64.0.1"]) {
      assert.match(refusedAddress(address, false) ?? "", /RELAY_WEBHOOK_ALLOW_PRIVATE is false/, address);
      assert.equal(refusedAddress(address, true), undefined, address);
    }
    for (const address of ["::1", "fe80::1", "fd00::1", "::", "0.0.0.0", "::ffff:127.0.0.1", "::ffff:7f00:1"]) {
      assert.ok(refusedAddress(address, false), address);
    }
    assert.match(refusedAddress("224.0.0.1", true) ?? "", /multicast/);
    assert.equal(refusedAddress("93.184.216.34", false), undefined);
    assert.equal(refusedAddress("2606:2800:220:1::1", false), undefined);
  });

  it("checks the URL's host at registration when it is an address or localhost", () => {
    const refused = (url: string) => {
      const checked = checkWebhookUrl(url, false);
      return checked.ok ? undefined : checked.reason;
    };
    assert.match(refused("http://127.0.0.1:8080/hook") ?? "", /loopback/);
    assert.match(refused("http://0x7f.1/") ?? "", /loopback/, "every spelling of an IPv4 address");
    assert.match(refused("http://[::ffff:127.0.0.1]/") ?? "", /loopback/);
    assert.match(refused("https://[fe80::1]/") ?? "", /link-local/);
    assert.match(refused("http://localhost:3000/") ?? "", /the host itself/);
    assert.match(refused("http://api.localhost/") ?? "", /the host itself/);
    assert.match(refused("ftp://example.com/") ?? "", /http or https/);
    assert.match(refused("https://user:pw@example.com/") ?? "", /credentials/);
    assert.equal(refused("https://hooks.example.com/relay?x=1"), undefined, "a name is checked when it is resolved");
    assert.ok(checkWebhookUrl("http://127.0.0.1:8080/hook", true).ok);
    assert.ok(checkWebhookUrl("http://localhost/", true).ok);
  });
});

describe("webhook client", () => {
  let server: Server;
  let port = 0;
  const seen: {
    host: string | undefined;
    path: string | undefined;
    headers: IncomingMessage["headers"];
    body: string;
  }[] = [];
  before(async () => {
    server = createServer((request: IncomingMessage, response: ServerResponse) => {
      const chunks: Buffer[] = [];
      request.on("data", (c: Buffer) => chunks.push(c));
      request.on("end", () => {
        seen.push({
          host: request.headers.host,
          path: request.url,
          headers: request.headers,
          body: Buffer.concat(chunks).toString(),
        });
        if (request.url === "/hang") return;
        if (request.url === "/fail") response.writeHead(500).end("no");
        else if (request.url === "/moved") response.writeHead(302, { location: "http://127.0.0.1/" }).end();
        else response.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** The resolver's answers, as the relay's resolver would give them (the DNS edge). */
  const zone = (answers: Record<string, string[]>): LookupHost => async (host) => ({ addresses: answers[host] ?? [] });
  const post = (url: string, lookup: LookupHost, allowPrivate: boolean, timeoutMs = 5000) =>
    createWebhookClient({ lookup, allowPrivate })({
      url: new URL(url),
      body: new TextEncoder().encode('{"type":"relay.events"}'),
      headers: { "webhook-id": "evt_1_1" },
      timeoutMs,
    });

  it("POSTs to the address it checked, with the URL's host, path and the body", async () => {
    const result = await post(`http://hooks.test:${port}/in?key=1`, zone({ "hooks.test": ["127.0.0.1"] }), true);
    assert.deepEqual(result, { ok: true, status: 200 });
    const last = seen.at(-1)!;
    assert.equal(last.host, `hooks.test:${port}`);
    assert.equal(last.path, "/in?key=1");
    assert.equal(last.body, '{"type":"relay.events"}');
    assert.equal(last.headers["webhook-id"], "evt_1_1");
    assert.equal(last.headers["content-type"], "application/json");
  });

  it("refuses a name with any private answer, before connecting", async () => {
    const before = seen.length;
    const loopback = await post(`http://hooks.test:${port}/`, zone({ "hooks.test": ["127.0.0.1"] }), false);
    assert.equal(loopback.ok, false);
    assert.match(
      !loopback.ok ? loopback.reason : "",
      /^refused: hooks\.test resolves to 127\.0\.0\.1 is a loopback address/,
    );
    const mixed = await post(
      `http://hooks.test:${port}/`,
      zone({ "hooks.test": ["93.184.216.34", "10.0.0.7"] }),
      false,
    );
    assert.match(!mixed.ok ? mixed.reason : "", /10\.0\.0\.7 is a private address/);
    const literal = await post(`http://127.0.0.1:${port}/`, zone({}), false);
    assert.equal(literal.ok, false, "an address in the URL is checked too");
    assert.equal(seen.length, before, "nothing reached the server");
  });

  it("counts only 2xx as taken: an error, a redirect (not followed), a timeout, no address", async () => {
    const lookup = zone({ "hooks.test": ["127.0.0.1"] });
    assert.deepEqual(await post(`http://hooks.test:${port}/fail`, lookup, true), { ok: false, reason: "HTTP 500" });
    assert.deepEqual(await post(`http://hooks.test:${port}/moved`, lookup, true), { ok: false, reason: "HTTP 302" });
    assert.deepEqual(await post(`http://hooks.test:${port}/hang`, lookup, true, 300), {
      ok: false,
      reason: "no answer within 300 ms",
    });
    assert.deepEqual(await post(`http://nowhere.test:${port}/`, lookup, true), {
      ok: false,
      reason: "nowhere.test has no address",
    });
  });
});

describe("webhook client over https", () => {
  let pki: TestPki;
  let server: ReturnType<typeof createHttpsServer>;
  let port = 0;
  const hosts: (string | undefined)[] = [];
  before(async () => {
    pki = makePki();
    server = createHttpsServer(pki.leaf(["hooks.test", "127.0.0.1"]), (request, response) => {
      hosts.push(request.headers.host);
      request.resume();
      request.on("end", () => response.writeHead(202).end());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    pki.cleanup();
  });

  const post = (host: string, ca: readonly string[] | undefined) =>
    createWebhookClient({ lookup: async () => ({ addresses: ["127.0.0.1"] }), allowPrivate: true, ca })({
      url: new URL(`https://${host}:${port}/in`),
      body: new TextEncoder().encode("{}"),
      headers: {},
      timeoutMs: 5000,
    });

  it("verifies the certificate for the URL's host at the pinned address", async () => {
    assert.deepEqual(await post("hooks.test", [pki.ca]), { ok: true, status: 202 });
    assert.deepEqual(hosts, [`hooks.test:${port}`]);
  });

  it("verifies it for an address in the URL too (an IP subjectAltName)", async () => {
    assert.deepEqual(await post("127.0.0.1", [pki.ca]), { ok: true, status: 202 });
    assert.equal(hosts.at(-1), `127.0.0.1:${port}`);
  });

  it("refuses a certificate for another name, or from an unknown CA, sending nothing", async () => {
    const sent = hosts.length;
    const wrongName = await post("other.test", [pki.ca]);
    assert.equal(wrongName.ok, false);
    assert.match(!wrongName.ok ? wrongName.reason : "", /other\.test/);
    const unknownCa = await post("hooks.test", undefined);
    assert.equal(unknownCa.ok, false);
    assert.equal(hosts.length, sent, "no request was sent");
  });
});
