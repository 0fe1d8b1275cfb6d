import type { Clock } from "../core/clock.ts";

/**
 * Hosts whose STARTTLS handshake failed recently: opportunistic TLS
 * (RFC 3207) goes straight to plaintext there for a while instead of failing
 * the same handshake on every connection. Bounded in size.
 */
export class TlsFallbackMemory {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly rememberMs = 3_600_000,
    private readonly maxHosts = 10_000,
  ) {}

  shouldSkipTls(host: string): boolean {
    const until = this.until.get(host);
    if (until === undefined) return false;
    if (until > this.clock.now()) return true;
    this.until.delete(host);
    return false;
  }

  handshakeFailed(host: string): void {
    this.until.delete(host);
    this.until.set(host, this.clock.now() + this.rememberMs);
    while (this.until.size > this.maxHosts) this.until.delete(this.until.keys().next().value!);
  }
}
