/**
 * Fetching the policy from `https://mta-sts.<domain>/.well-known/mta-sts.txt`
 * (RFC 8461 3.3) with a minimal HTTP/1.1 GET over node:tls.
 *
 * - HTTPS only; the certificate must chain to a trusted root (or `ca`) and be
 *   valid for `mta-sts.<domain>` (RFC 8461 3.3), so `servername` is that name
 *   even though we connect to an address.
 * - The policy host is resolved through our Resolver (A, then AAAA), not the
 *   system resolver, so RELAY_DNS_SERVERS and test zones apply.
 * - Redirects are not followed, only 200 is accepted, no HTTP cache is used,
 *   the media type must be text/plain, the body is capped (64 KB) and the
 *   whole fetch has a deadline (60 s), as RFC 8461 3.3 suggests.
 * - Failures are values, never exceptions.
 *
 * Own HTTP over node:tls rather than node:https: node:https with a custom
 * lookup behaves differently across runtimes. TCP comes from the platform's
 * connectTcp (which binds RELAY_SOURCE_IP); TLS is tls.connect over that
 * socket, as the platform's STARTTLS client does (this fetch also wants ALPN
 * and its own deadline handling). `ca` comes from RELAY_TLS_CA_FILE: the
 * bundled roots plus the operator's extra certificates.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import type { Resolver } from "../../dns/resolver.ts";
import { connectTcp } from "../../platform/net.ts";
import { type HttpResponse, parseHttpResponse } from "../../core/http-response.ts";
import { normalizeHost, parsePolicy, type Policy } from "./policy.ts";

export const WELL_KNOWN_PATH = "/.well-known/mta-sts.txt";
export const DEFAULT_TIMEOUT_MS = 60_000;
/** RFC 8461 3.3: "a maximum size of 64 KB" as a suggested limit. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
const MAX_HEADER_BYTES = 16 * 1024;

export interface FetchOptions {
  readonly resolver: Pick<Resolver, "a" | "aaaa">;
  /** Default 443; tests point it at a loopback port. */
  readonly port?: number;
  /** Trust anchors instead of the system roots (tests). */
  readonly ca?: tls.ConnectionOptions["ca"];
  /** Deadline for the whole fetch (DNS, connect, TLS, response); default 60 s. */
  readonly timeoutMs?: number;
  /** Default 64 KB. */
  readonly maxBodyBytes?: number;
  /** Bind outgoing connections to this address (RELAY_SOURCE_IP); only addresses of its family are tried. */
  readonly localAddress?: string;
}

/**
 * What kind of failure, in the terms TLS reporting uses for it (RFC 8460
 * 4.3.2.2): the policy host could not be reached or did not answer 200
 * ("fetch-error"), its certificate failed PKIX validation ("webpki-invalid"),
 * or what it served is not a valid policy ("invalid").
 */
export type FetchFailureKind = "fetch-error" | "webpki-invalid" | "invalid";

export type FetchResult =
  | { readonly ok: true; readonly policy: Policy }
  | { readonly ok: false; readonly reason: string; readonly kind?: FetchFailureKind };

const LABEL = /^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;

/** Fetches and parses the policy of `domain`; the result says what failed, quoting the value. */
export async function fetchPolicy(domain: string, options: FetchOptions): Promise<FetchResult> {
  const host = `mta-sts.${normalizeHost(domain)}`;
  if (host.length > 253 || !host.split(".").every((l) => LABEL.test(l))) {
    return { ok: false, reason: `"${domain}" is not a domain name`, kind: "fetch-error" };
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const sockets: Sockets = { open: new Set(), done: false, deadline: performance.now() + timeoutMs };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<FetchResult>((resolve) => {
    const reason = `fetching https://${host}${WELL_KNOWN_PATH} timed out after ${timeoutMs} ms`;
    timer = setTimeout(() => resolve({ ok: false, reason, kind: "fetch-error" }), timeoutMs);
  });
  try {
    return await Promise.race([deadline, fetchFrom(host, options, sockets)]);
  } finally {
    clearTimeout(timer);
    sockets.done = true;
    for (const socket of sockets.open) socket.destroy();
  }
}

async function fetchFrom(host: string, options: FetchOptions, sockets: Sockets): Promise<FetchResult> {
  const url = `https://${host}${WELL_KNOWN_PATH}`;
  const addresses = await addressesOf(host, options);
  if (!addresses.ok) return { ok: false, reason: `${url}: ${addresses.reason}`, kind: "fetch-error" };
  const failures: string[] = [];
  let kind: FetchFailureKind = "fetch-error";
  // Connection and TLS failures move on to the next address; an HTTP answer is final.
  for (const address of addresses.list) {
    if (sockets.done) break;
    const got = await get(host, address, options, sockets);
    if (got.ok) return judge(url, got.response);
    failures.push(`${address}: ${got.reason}`);
    kind = got.webpki ? "webpki-invalid" : "fetch-error";
    if (!got.retry) break;
  }
  return { ok: false, reason: `${url}: ${failures.join("; ")}`, kind };
}

async function addressesOf(
  host: string,
  options: FetchOptions,
): Promise<{ ok: true; list: string[] } | { ok: false; reason: string }> {
  const family = options.localAddress ? net.isIP(options.localAddress) : 0;
  const [a, aaaa] = await Promise.all([
    family === 6 ? undefined : options.resolver.a(host),
    family === 4 ? undefined : options.resolver.aaaa(host),
  ]);
  // IPv4 first: the relay sends from one address it owns, most often IPv4.
  const list = [...(a?.ok ? a.answers : []), ...(aaaa?.ok ? aaaa.answers : [])];
  if (list.length > 0) return { ok: true, list };
  const errors = [a && !a.ok ? `A ${a.error}` : undefined, aaaa && !aaaa.ok ? `AAAA ${aaaa.error}` : undefined].filter(
    Boolean,
  );
  return { ok: false, reason: `${host} has no usable address${errors.length > 0 ? ` (${errors.join(", ")})` : ""}` };
}

/** `webpki`: the policy host's certificate failed validation (RFC 8460 4.3.2.2 "sts-webpki-invalid"). */
type Got = { ok: true; response: HttpResponse } | { ok: false; reason: string; retry: boolean; webpki?: boolean };

/** Sockets of one fetch, destroyed together when it ends or runs out of time. */
interface Sockets {
  readonly open: Set<net.Socket>;
  done: boolean;
  /** performance.now() at which the whole fetch times out; a connect attempt never outlives it. */
  readonly deadline: number;
}

/** One connection, one GET, the response read to its end or to a limit. */
async function get(host: string, address: string, options: FetchOptions, sockets: Sockets): Promise<Got> {
  let raw: net.Socket;
  try {
    const timeoutMs = Math.max(1, Math.ceil(sockets.deadline - performance.now()));
    raw = await connectTcp({ host: address, port: options.port ?? 443, localAddress: options.localAddress, timeoutMs });
  } catch (error) {
    return { ok: false, reason: describe(error, host), retry: true };
  }
  if (sockets.done) {
    raw.destroy();
    return { ok: false, reason: "cancelled", retry: false };
  }
  sockets.open.add(raw);
  raw.on("error", () => raw.destroy()); // reported through the TLS socket
  return exchange(host, raw, options, sockets);
}

function exchange(host: string, raw: net.Socket, options: FetchOptions, sockets: Sockets): Promise<Got> {
  const port = options.port ?? 443;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return new Promise<Got>((resolve) => {
    let settled = false;
    let secured = false;
    let buffer = new Uint8Array(0);
    const socket = tls.connect({
      socket: raw,
      servername: host, // SNI and the name the certificate must match (RFC 8461 3.3)
      rejectUnauthorized: true,
      ca: options.ca,
      minVersion: "TLSv1.2",
      ALPNProtocols: ["http/1.1"],
    });
    sockets.open.add(socket);
    const finish = (got: Got) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      raw.destroy();
      sockets.open.delete(socket);
      sockets.open.delete(raw);
      resolve(got);
    };
    const step = (eof: boolean) => {
      const parsed = parseHttpResponse(buffer, { maxHeaderBytes: MAX_HEADER_BYTES, maxBodyBytes }, eof);
      if (parsed.state === "done") finish({ ok: true, response: parsed.response });
      else if (parsed.state === "error") finish({ ok: false, reason: parsed.reason, retry: false });
    };
    const closed = () => (secured
      ? step(true)
      : finish({ ok: false, reason: "connection closed during the TLS handshake", retry: true }));
    socket.once("secureConnect", () => {
      // rejectUnauthorized already refuses a bad chain or name; checked again here so that no
      // runtime's TLS layer can let an unverified peer through.
      const identity = socket.authorized
        ? tls.checkServerIdentity(host, socket.getPeerCertificate())
        : socket.authorizationError;
      if (identity !== undefined && identity !== null) {
        finish({
          ok: false,
          reason: `certificate not valid for ${host}: ${String(identity)}`,
          retry: true,
          webpki: true,
        });
        return;
      }
      secured = true;
      const authority = port === 443 ? host : `${host}:${port}`;
      socket.write(
        `GET ${WELL_KNOWN_PATH} HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: relay (MTA-STS)\r\n` +
          "Accept: text/plain\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
      );
    });
    socket.on("data", (chunk: Uint8Array) => {
      if (!secured) {
        return;
      }
      const joined = new Uint8Array(buffer.length + chunk.length);
      joined.set(buffer);
      joined.set(chunk, buffer.length);
      buffer = joined;
      step(false);
    });
    socket.once("end", closed);
    socket.once("close", closed);
    socket.on("error", (error: Error) => {
      const reason = describe(error, host);
      finish({ ok: false, reason, retry: !secured, webpki: reason.startsWith("certificate not valid") });
    });
  });
}

function describe(error: unknown, host: string): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const text = typeof code === "string" && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  return /cert|altname|self.signed|issuer|verify/i.test(text) ? `certificate not valid for ${host}: ${text}` : text;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** RFC 8461 3.3: 200 only, no redirects followed, text/plain, then the policy itself (3.2). */
function judge(url: string, response: HttpResponse): FetchResult {
  const { status, headers } = response;
  if (status >= 300 && status < 400) {
    const reason = `${url}: HTTP ${status} redirect to "${headers.get("location") ?? ""}" not followed (RFC 8461 3.3)`;
    return { ok: false, reason, kind: "fetch-error" };
  }
  if (status !== 200) return { ok: false, reason: `${url}: HTTP status ${status}, not 200`, kind: "fetch-error" };
  const type = headers.get("content-type");
  const media = type?.split(";")[0]?.trim().toLowerCase();
  if (media !== "text/plain") {
    return {
      ok: false,
      reason: `${url}: Content-Type "${type ?? ""}" is not text/plain (RFC 8461 3.3)`,
      kind: "invalid",
    };
  }
  const coding = headers.get("content-encoding");
  if (coding !== undefined && coding.toLowerCase() !== "identity") {
    return { ok: false, reason: `${url}: unexpected Content-Encoding "${coding}"`, kind: "invalid" };
  }
  let text: string;
  try {
    text = utf8.decode(response.body);
  } catch {
    return { ok: false, reason: `${url}: body is not UTF-8`, kind: "invalid" };
  }
  const parsed = parsePolicy(text);
  return parsed.ok ? parsed : { ok: false, reason: `${url}: invalid policy: ${parsed.reason}`, kind: "invalid" };
}
