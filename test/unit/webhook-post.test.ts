import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";
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

describe("webhook client connections", () => {
  /**
   * A loopback HTTP server written by hand, so that each test says exactly
   * how it answers and when it closes; it counts the connections it took.
   */
  async function serverAnswering(answer: (request: number, socket: Socket) => void) {
    let connections = 0;
    let requests = 0;
    const open = new Set<Socket>();
    const server = createTcpServer((socket) => {
      connections++;
      open.add(socket);
      socket.on("close", () => open.delete(socket));
      let pending = "";
      socket.on("data", (chunk) => {
        pending += chunk.toString("latin1");
        for (;;) {
          const headEnd = pending.indexOf("\r\n\r\n");
          if (headEnd < 0) return;
          const length = Number(/content-length: (\d+)/i.exec(pending.slice(0, headEnd))?.[1] ?? 0);
          if (pending.length < headEnd + 4 + length) return;
          pending = pending.slice(headEnd + 4 + length);
          answer(++requests, socket);
        }
      });
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/hook`,
      connections: () => connections,
      requests: () => requests,
      close: () => {
        open.forEach((socket) => socket.destroy());
        return new Promise((resolve) => server.close(resolve));
      },
    };
  }

  const client = () => createWebhookClient({ lookup: async () => ({ addresses: [] }), allowPrivate: true });
  const batch = (url: string) => ({
    url: new URL(url),
    body: new TextEncoder().encode("{}"),
    headers: {},
    timeoutMs: 5000,
  });
  const OK_204 = { ok: true, status: 204 };

  it("sends batch after batch over one connection while the endpoint keeps it open", async () => {
    const server = await serverAnswering((_, socket) => socket.write("HTTP/1.1 204 No Content\r\n\r\n"));
    const post = client();
    for (let i = 0; i < 3; i++) assert.deepEqual(await post(batch(server.url)), OK_204);
    assert.deepEqual([server.requests(), server.connections()], [3, 1]);
    await server.close();
  });

  it("opens a new connection when the endpoint asked to close, spoke HTTP/1.0, or sent an unframed body", async () => {
    const answers = [
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\n",
    ];
    for (const text of answers) {
      const server = await serverAnswering((_, socket) => {
        socket.write(text);
        if (!/Content-Length/.test(text)) socket.end();
      });
      const post = client();
      assert.deepEqual(await post(batch(server.url)), { ok: true, status: 200 }, text);
      assert.deepEqual(await post(batch(server.url)), { ok: true, status: 200 }, text);
      assert.equal(server.connections(), 2, text);
      await server.close();
    }
  });

  it("sends a batch again on a new connection when the endpoint had closed the idle one", async () => {
    const server = await serverAnswering((request, socket) => {
      socket.write("HTTP/1.1 204 No Content\r\n\r\n");
      if (request === 1) setTimeout(() => socket.destroy(), 10); // as a server's keep-alive timeout does
    });
    const post = client();
    assert.deepEqual(await post(batch(server.url)), OK_204);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(await post(batch(server.url)), OK_204);
    assert.deepEqual([server.requests(), server.connections()], [2, 2]);
    await server.close();
  });

  it("does not send again on a kept connection that failed after an answer began", async () => {
    const server = await serverAnswering((request, socket) => {
      if (request === 1) socket.write("HTTP/1.1 204 No Content\r\n\r\n");
      else socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    });
    const post = client();
    assert.deepEqual(await post(batch(server.url)), OK_204);
    const cut = await post(batch(server.url));
    assert.equal(cut.ok, false);
    assert.match(!cut.ok ? cut.reason : "", /3 of 10 body bytes/);
    assert.equal(server.requests(), 2, "the endpoint may have taken it: the dispatcher's retry decides");
    await server.close();
  });
});
