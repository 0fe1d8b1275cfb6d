/** One exchange with one server over UDP or TCP (RFC 1035 4.2), through node:dgram / node:net. */
import * as dgram from "node:dgram";
import * as net from "node:net";
import type { HostPort } from "../core/host-port.ts";
import { ipToBigInt } from "../core/cidr.ts";

export type Exchange =
  | { ok: true; reply: Uint8Array }
  | { ok: false; error: "TIMEOUT" | "NETWORK"; detail: string };

/**
 * Sends `query` and resolves with the first datagram from the server that `accept`
 * takes (wrong ids, wrong questions and strangers are ignored, as spoofs).
 * A fresh socket per query gives a fresh random source port.
 */
export function exchangeUdp(
  server: HostPort,
  query: Uint8Array,
  timeoutMs: number,
  accept: (reply: Uint8Array) => boolean,
): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? "udp6" : "udp4");
    let done = false;
    const finish = (result: Exchange): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // already closed
      }
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, error: "TIMEOUT", detail: `no UDP reply from ${label(server)} in ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.on("error", (e) => finish({ ok: false, error: "NETWORK", detail: `${label(server)}: ${e.message}` }));
    socket.on("message", (msg, rinfo) => {
      if (rinfo.port !== server.port || (net.isIP(server.host) !== 0 && !sameAddress(rinfo.address, server.host))) {
        return;
      }
      const reply = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      if (accept(reply)) finish({ ok: true, reply: reply.slice() });
    });
    socket.send(query, server.port, server.host, (e) => {
      if (e) finish({ ok: false, error: "NETWORK", detail: `${label(server)}: ${e.message}` });
    });
  });
}

/** Query over TCP with the two-octet length prefix (RFC 1035 4.2.2); the whole exchange shares one timeout. */
export function exchangeTcp(server: HostPort, query: Uint8Array, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ host: server.host, port: server.port });
    let buffered = new Uint8Array(0);
    let done = false;
    const finish = (result: Exchange): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, error: "TIMEOUT", detail: `no TCP reply from ${label(server)} in ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.on("error", (e) => finish({ ok: false, error: "NETWORK", detail: `${label(server)}: ${e.message}` }));
    socket.on(
      "close",
      () => finish({ ok: false, error: "NETWORK", detail: `${label(server)} closed TCP before a full reply` }),
    );
    socket.on("connect", () => {
      const framed = new Uint8Array(query.length + 2);
      framed[0] = query.length >> 8;
      framed[1] = query.length & 0xff;
      framed.set(query, 2);
      socket.write(framed);
    });
    socket.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(buffered.length + chunk.length);
      joined.set(buffered);
      joined.set(chunk, buffered.length);
      buffered = joined;
      if (buffered.length < 2) return;
      const len = (buffered[0]! << 8) | buffered[1]!;
      if (buffered.length >= 2 + len) finish({ ok: true, reply: buffered.slice(2, 2 + len) });
    });
  });
}

function label(s: HostPort): string {
  return s.host.includes(":") ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/** Same address however written ("::1" vs "0:0::1", "::ffff:127.0.0.1" vs "127.0.0.1"). */
function sameAddress(a: string, b: string): boolean {
  const x = ipToBigInt(a);
  return x !== undefined && x === ipToBigInt(b);
}
