/**
 * Peer misbehaviour the destination fixture does not script: a tiny SMTP
 * server that answers each command line with whatever the test says.
 */
import * as net from "node:net";

export interface ScriptedPeer {
  readonly port: number;
  /** Every command line received, in order. */
  readonly lines: string[];
  close(): Promise<void>;
}

/** answer(line) returns the raw text to write (CRLFs included), "" for silence, or null to hang up. */
export async function scripted(
  answer: (line: string) => string | null,
  greeting = "220 peer.test ESMTP\r\n",
): Promise<ScriptedPeer> {
  const lines: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    socket.write(greeting);
    let buffer = "";
    socket.on("data", (chunk) => {
      buffer += chunk.toString("latin1");
      for (let lf = buffer.indexOf("\n"); lf !== -1; lf = buffer.indexOf("\n")) {
        const line = buffer.slice(0, lf).replace(/\r$/, "");
        buffer = buffer.slice(lf + 1);
        lines.push(line);
        const out = answer(line);
        if (out === null) return void socket.destroy();
        if (out) socket.write(out);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    lines,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A well-behaved server with PIPELINING, for scripts to fall back to. */
export const plainServer = (line: string): string => {
  if (line.startsWith("EHLO")) return "250-peer.test\r\n250 PIPELINING\r\n";
  if (line === "DATA") return "354 go\r\n";
  if (line === "QUIT") return "221 bye\r\n";
  return "250 ok\r\n";
};
