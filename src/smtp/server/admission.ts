import { type Reply, reply } from "../../core/reply.ts";

/**
 * Connection admission: at most `max` connections in all and `perIp` from
 * one address, counted from accept (a TLS handshake in progress holds its
 * place) until the connection closes. The last `reserved` places of `max`
 * are kept for exempt addresses (the trusted networks): a flood of
 * connections from anywhere else cannot lock them out.
 */
export class Admission {
  #total = 0;
  #perIp = new Map<string, number>();

  constructor(
    readonly hostname: string,
    readonly max: number | undefined,
    readonly perIp: number | undefined,
    /** Addresses the per-address limit does not apply to (the app's trusted networks). */
    readonly perIpExempt: (address: string) => boolean = () => false,
    readonly reserved = 0,
  ) {}

  /** Connections admitted and not closed yet. */
  get open(): number {
    return this.#total;
  }

  /** A release function for an admitted connection (safe to call twice), or the 421 refusal. */
  admit(address: string): (() => void) | Reply {
    const ip = normalize(address);
    const fromIp = this.#perIp.get(ip) ?? 0;
    const exempt = this.perIpExempt(address);
    if (this.max !== undefined && this.#total >= (exempt ? this.max : this.max - this.reserved)) {
      // The server's capacity, not a policy about this client: X.3.2, not accepting network messages (RFC 3463).
      return reply(421, "4.3.2", `${this.hostname} Too many connections, try again later`);
    }
    if (this.perIp !== undefined && fromIp >= this.perIp && !exempt) {
      return reply(421, "4.7.0", `${this.hostname} Too many connections from your address, try again later`);
    }
    this.#total++;
    this.#perIp.set(ip, fromIp + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left > 0) this.#perIp.set(ip, left);
      else this.#perIp.delete(ip);
    };
  }
}

/** "::ffff:192.0.2.1" (an IPv4 client on a dual-stack socket) is 192.0.2.1. */
function normalize(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "").toLowerCase();
}
