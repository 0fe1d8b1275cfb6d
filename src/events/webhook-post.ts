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

/** How long a connection an endpoint kept open waits for the next batch before it is closed. */
const IDLE_MS = 30_000;

/**
 * The connections endpoints kept open (HTTP/1.1 persistence, RFC 9112 9.3),
 * by origin: a busy endpoint takes batch after batch over one connection,
 * without a TCP and TLS handshake each. The dispatcher sends one batch at a
 * time per endpoint, so one idle connection per origin is all it needs.
 * Each was opened to an address checked when it was made; an idle one holds
 * nothing up (unref) and is closed after IDLE_MS or when the peer closes it.
 */
class IdleConnections {
  readonly #byOrigin = new Map<string, net.Socket>();

  readonly #drops = new Map<net.Socket, () => void>();

  take(origin: string): net.Socket | undefined {
    const socket = this.#byOrigin.get(origin);
    if (socket === undefined) return undefined;
    this.#byOrigin.delete(origin);
    const drop = this.#drops.get(socket)!;
    this.#drops.delete(socket);
    socket.off("close", drop).off("error", drop).off("data", drop).off("timeout", drop);
    socket.setTimeout(0);
    socket.ref();
    return socket.destroyed || !socket.writable ? undefined : socket;
  }

  keep(origin: string, socket: net.Socket): void {
    const before = this.#byOrigin.get(origin);
    if (before !== undefined) this.#drops.get(before)!();
    const drop = () => {
      this.#byOrigin.delete(origin);
      this.#drops.delete(socket);
      socket.destroy();
    };
    this.#byOrigin.set(origin, socket);
    this.#drops.set(socket, drop);
    socket.unref();
    socket.setTimeout(IDLE_MS);
    // Bytes while idle are not an answer to anything: the connection is no longer in step.
    socket.on("timeout", drop).on("close", drop).on("error", drop).on("data", drop);
  }
}

/** One exchange's outcome, and whether its connection may carry the next. */
interface Exchanged {
  readonly result: WebhookResult;
  readonly reusable: boolean;
  /** A kept connection that failed before any byte of an answer: the request is sent again on a new one. */
  readonly stale?: true;
}

export function createWebhookClient(options: WebhookClientOptions): PostWebhook {
  const idle = new IdleConnections();
  return async (request) => {
    const sockets: Sockets = { open: new Set(), done: false };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      sockets.done = true;
      sockets.open.forEach((s) => s.destroy(new Error("cancelled")));
    };
    const deadline = new Promise<Exchanged>((resolve) => {
      timer = setTimeout(() => {
        resolve({ result: { ok: false, reason: `no answer within ${request.timeoutMs} ms` }, reusable: false });
        onAbort();
      }, request.timeoutMs);
    });
    request.signal?.addEventListener("abort", onAbort);
    const started = performance.now();
    const left = () => Math.max(1, Math.ceil(request.timeoutMs - (performance.now() - started)));
    const origin = request.url.origin;
    try {
      const kept = idle.take(origin);
      if (kept !== undefined) {
        sockets.open.add(kept);
        const https = request.url.protocol === "https:";
        const again = await Promise.race([deadline, exchange(kept, https, request, hostOf(request.url), true)]);
        if (!again.stale) return settle(again, kept);
        sockets.open.delete(kept);
      }
      const fresh = await Promise.race([deadline, send(request, options, sockets, left)]);
      return settle(fresh, "socket" in fresh ? fresh.socket : undefined);
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
      onAbort();
    }

    /** The result; a connection that may carry the next batch is kept rather than closed with the others. */
    function settle(exchanged: Exchanged, socket: net.Socket | undefined): WebhookResult {
      if (exchanged.reusable && socket !== undefined && !sockets.done) {
        // The open sockets are this connection's (TCP, and TLS over it): none is closed.
        sockets.open.clear();
        idle.keep(origin, socket);
      }
      return exchanged.result;
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
): Promise<Exchanged & { socket?: net.Socket }> {
  const refuse = (reason: string) => ({ result: { ok: false, reason } as const, reusable: false });
  const host = hostOf(request.url);
  const family = options.localAddress ? net.isIP(options.localAddress) as 4 | 6 : 0;
  const found = net.isIP(host) !== 0 ? { addresses: [host] } : await options.lookup(host, family);
  if (found.addresses.length === 0) return refuse(`${host} has no address${found.error ? ` (${found.error})` : ""}`);
  // Every address is checked, not only the one used: a name may not lead inside by any of its answers.
  const refused = found.addresses.map((a) => refusedAddress(a, options.allowPrivate)).filter((r) => r !== undefined);
  if (refused.length > 0) return refuse(`refused: ${host} resolves to ${refused.join("; ")}`);
  const https = request.url.protocol === "https:";
  const port = Number(request.url.port || (https ? 443 : 80));
  const failures: string[] = [];
  for (const address of found.addresses) {
    if (sockets.done) return refuse("cancelled");
    let raw: net.Socket;
    try {
      raw = await connectTcp({ host: address, port, localAddress: options.localAddress, timeoutMs: left() });
    } catch (error) {
      failures.push(`${address}: ${describe(error)}`); // the next address may answer
      continue;
    }
    if (sockets.done) {
      raw.destroy();
      return refuse("cancelled");
    }
    sockets.open.add(raw);
    raw.on("error", () => raw.destroy());
    const socket = https ? secure(raw, host, options.ca) : raw;
    sockets.open.add(socket);
    return { ...(await exchange(socket, https, request, host, false)), socket };
  }
  return refuse(`cannot connect to ${host}:${port}: ${failures.join("; ")}`);
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
    ...request.headers,
  };
  const lines = Object.entries(fields).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  return `POST ${url.pathname}${url.search} HTTP/1.1\r\n${lines}\r\n`;
}

/**
 * Send the request and read the answer. The connection may carry the next
 * batch when the answer was framed (a length, chunks, or a status that has
 * no body), nothing followed it, and neither side asked to close (RFC 9112
 * 9.3; HTTP/1.0 closes unless it says keep-alive). `kept`: the connection
 * carried an earlier batch, and the peer may have closed it meanwhile.
 */
function exchange(
  socket: net.Socket,
  https: boolean,
  request: WebhookRequest,
  host: string,
  kept: boolean,
): Promise<Exchanged> {
  return new Promise((resolve) => {
    let buffer = new Uint8Array(0);
    let settled = false;
    const finish = (exchanged: Exchanged) => {
      if (settled) return;
      settled = true;
      socket.off("data", onData).off("end", onEnd).off("close", onEnd).off("error", onError);
      if (!exchanged.reusable) socket.destroy();
      resolve(exchanged);
    };
    const fail = (reason: string) =>
      finish({
        result: { ok: false, reason },
        reusable: false,
        ...(kept && buffer.length === 0 ? { stale: true } : {}),
      });
    const step = (eof: boolean) => {
      const parsed = parseHttpResponse(buffer, { maxHeaderBytes: MAX_HEADER_BYTES, maxBodyBytes: MAX_BODY_BYTES }, eof);
      if (parsed.state === "done") {
        const { status, headers, minorVersion } = parsed.response;
        const connection = (headers.get("connection") ?? "").toLowerCase().split(/\s*,\s*/);
        const persistent = minorVersion === 1 ? !connection.includes("close") : connection.includes("keep-alive");
        const framed = headers.has("content-length") || headers.has("transfer-encoding") || status === 204 ||
          status === 304;
        finish({
          result: status >= 200 && status < 300 ? { ok: true, status } : { ok: false, reason: `HTTP ${status}` },
          reusable: !eof && persistent && framed && parsed.length === buffer.length,
        });
      } else if (parsed.state === "error") {
        if (eof) fail(parsed.reason);
        else finish({ result: { ok: false, reason: parsed.reason }, reusable: false });
      }
    };
    const onData = (chunk: Uint8Array) => {
      const joined = new Uint8Array(buffer.length + chunk.length);
      joined.set(buffer);
      joined.set(chunk, buffer.length);
      buffer = joined;
      step(false);
    };
    const onEnd = () => step(true);
    const onError = (error: Error) => fail(describe(error));
    socket.on("data", onData).on("end", onEnd).on("close", onEnd).on("error", onError);
    const write = () => {
      socket.write(requestHead(request));
      socket.write(request.body);
    };
    if (https && !kept) {
      socket.once("secureConnect", () => {
        const tlsSocket = socket as tls.TLSSocket;
        // Checked again here so that no runtime's TLS layer lets an unverified peer through.
        const identity = tlsSocket.authorized
          ? tls.checkServerIdentity(host, tlsSocket.getPeerCertificate())
          : tlsSocket.authorizationError;
        if (identity !== undefined && identity !== null) {
          finish({
            result: { ok: false, reason: `certificate not valid for ${host}: ${String(identity)}` },
            reusable: false,
          });
        } else write();
      });
    } else write();
  });
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}
