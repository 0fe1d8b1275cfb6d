/**
 * One webhook delivery: a POST over HTTP/1.1 to an address that was checked
 * (webhook-target.ts), never to a name the runtime resolves on its own.
 *
 * The host's addresses come from the relay's resolver (RELAY_DNS_SERVERS);
 * the request is refused when any of them may not be reached, and the
 * connection goes to the checked address itself: TCP from the platform's
 * connectTcp (which binds RELAY_SOURCE_IP), then for https TLS over that
 * socket with the URL's host as SNI and as the name the certificate must
 * match. Own HTTP rather than fetch or node:https, for the same reason as the
 * MTA-STS fetch: pinning the address through a custom lookup behaves
 * differently across runtimes. Redirects are answers, not followed; the whole
 * exchange has one deadline; the outcome is a value, never an exception.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { parseHttpResponse } from "../core/http-response.ts";
import { connectTcp } from "../platform/net.ts";
import { hostOf, refusedAddress } from "./webhook-target.ts";

/** The addresses of a host name: IPv4 ones first; an error says why there are none. */
export type LookupHost = (host: string, family: 0 | 4 | 6) => Promise<{ addresses: string[]; error?: string }>;

export interface WebhookRequest {
  readonly url: URL;
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  /** Deadline of the whole exchange: lookup, connect, TLS, request, response. */
  readonly timeoutMs: number;
  /** Aborts the exchange (shutdown, the endpoint deleted). */
  readonly signal?: AbortSignal;
}

export interface WebhookClientOptions {
  readonly lookup: LookupHost;
  readonly allowPrivate: boolean;
  /** RELAY_SOURCE_IP: the connection binds to it, and only addresses of its family are tried. */
  readonly localAddress?: string;
  /** Trust anchors for https instead of the runtime's roots (RELAY_TLS_CA_FILE). */
  readonly ca?: readonly string[];
}

export type WebhookResult = { readonly ok: true; readonly status: number } | {
  readonly ok: false;
  readonly reason: string;
};

/** How a delivery is sent: a real client (createWebhookClient), or a unit test's own. */
export type PostWebhook = (request: WebhookRequest) => Promise<WebhookResult>;

const MAX_HEADER_BYTES = 16 * 1024;
/** The answer's body is not used; a receiver that sends more than this is cut off. */
const MAX_BODY_BYTES = 64 * 1024;

export function createWebhookClient(options: WebhookClientOptions): PostWebhook {
  return async (request) => {
    const sockets: Sockets = { open: new Set(), done: false };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      sockets.done = true;
      sockets.open.forEach((s) => s.destroy(new Error("cancelled")));
    };
    const deadline = new Promise<WebhookResult>((resolve) => {
      timer = setTimeout(() => {
        resolve({ ok: false, reason: `no answer within ${request.timeoutMs} ms` });
        onAbort();
      }, request.timeoutMs);
    });
    request.signal?.addEventListener("abort", onAbort);
    const started = performance.now();
    const left = () => Math.max(1, Math.ceil(request.timeoutMs - (performance.now() - started)));
    try {
      return await Promise.race([deadline, send(request, options, sockets, left)]);
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
      onAbort();
    }
  };
}

/** The sockets of one delivery, destroyed together when it ends, runs out of time or is cancelled. */
interface Sockets {
  readonly open: Set<net.Socket>;
  done: boolean;
}

async function send(
  request: WebhookRequest,
  options: WebhookClientOptions,
  sockets: Sockets,
  left: () => number,
): Promise<WebhookResult> {
  const host = hostOf(request.url);
  const family = options.localAddress ? net.isIP(options.localAddress) as 4 | 6 : 0;
  const found = net.isIP(host) !== 0 ? { addresses: [host] } : await options.lookup(host, family);
  if (found.addresses.length === 0) {
    return { ok: false, reason: `${host} has no address${found.error ? ` (${found.error})` : ""}` };
  }
  // Every address is checked, not only the one used: a name may not lead inside by any of its answers.
  const refused = found.addresses.map((a) => refusedAddress(a, options.allowPrivate)).filter((r) => r !== undefined);
  if (refused.length > 0) return { ok: false, reason: `refused: ${host} resolves to ${refused.join("; ")}` };
  const https = request.url.protocol === "https:";
  const port = Number(request.url.port || (https ? 443 : 80));
  const failures: string[] = [];
  for (const address of found.addresses) {
    if (sockets.done) return { ok: false, reason: "cancelled" };
    let raw: net.Socket;
    try {
      raw = await connectTcp({ host: address, port, localAddress: options.localAddress, timeoutMs: left() });
    } catch (error) {
      failures.push(`${address}: ${describe(error)}`); // the next address may answer
      continue;
    }
    if (sockets.done) {
      raw.destroy();
      return { ok: false, reason: "cancelled" };
    }
    sockets.open.add(raw);
    raw.on("error", () => raw.destroy());
    const socket = https ? secure(raw, host, options.ca) : raw;
    sockets.open.add(socket);
    return exchange(socket, https, request, host);
  }
  return { ok: false, reason: `cannot connect to ${host}:${port}: ${failures.join("; ")}` };
}

function secure(raw: net.Socket, host: string, ca: readonly string[] | undefined): tls.TLSSocket {
  return tls.connect({
    socket: raw,
    // The name or address the certificate must match; SNI only for a name (RFC 6066 3).
    host,
    servername: net.isIP(host) === 0 ? host : undefined,
    rejectUnauthorized: true,
    ca: ca === undefined ? undefined : [...ca],
    minVersion: "TLSv1.2",
    ALPNProtocols: ["http/1.1"],
  });
}

function requestHead(request: WebhookRequest): string {
  const { url } = request;
  const fields = {
    host: url.host,
    "content-type": "application/json",
    "content-length": String(request.body.length),
    "user-agent": "relay (webhooks)",
    connection: "close",
    ...request.headers,
  };
  const lines = Object.entries(fields).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  return `POST ${url.pathname}${url.search} HTTP/1.1\r\n${lines}\r\n`;
}

function exchange(socket: net.Socket, https: boolean, request: WebhookRequest, host: string): Promise<WebhookResult> {
  return new Promise((resolve) => {
    let buffer = new Uint8Array(0);
    let settled = false;
    const finish = (result: WebhookResult) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result);
    };
    const step = (eof: boolean) => {
      const parsed = parseHttpResponse(buffer, { maxHeaderBytes: MAX_HEADER_BYTES, maxBodyBytes: MAX_BODY_BYTES }, eof);
      if (parsed.state === "done") {
        const { status } = parsed.response;
        finish(status >= 200 && status < 300 ? { ok: true, status } : { ok: false, reason: `HTTP ${status}` });
      } else if (parsed.state === "error") finish({ ok: false, reason: parsed.reason });
    };
    const write = () => {
      socket.write(requestHead(request));
      socket.write(request.body);
    };
    if (https) {
      socket.once("secureConnect", () => {
        const tlsSocket = socket as tls.TLSSocket;
        // Checked again here so that no runtime's TLS layer lets an unverified peer through.
        const identity = tlsSocket.authorized
          ? tls.checkServerIdentity(host, tlsSocket.getPeerCertificate())
          : tlsSocket.authorizationError;
        if (identity !== undefined && identity !== null) {
          finish({ ok: false, reason: `certificate not valid for ${host}: ${String(identity)}` });
        } else write();
      });
    } else write();
    socket.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(buffer.length + chunk.length);
      joined.set(buffer);
      joined.set(chunk, buffer.length);
      buffer = joined;
      step(false);
    });
    socket.once("end", () => step(true));
    socket.once("close", () => step(true));
    socket.on("error", (error: Error) => finish({ ok: false, reason: describe(error) }));
  });
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}
