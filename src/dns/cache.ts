/** A bounded map whose entries expire after their TTL, on an injected clock. */
import type { Clock } from "../core/clock.ts";

export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly maxEntries = 10_000,
  ) {}

  /** The value and its remaining seconds, or undefined when absent or expired. */
  get(key: string): { value: V; ttl: number } | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const left = entry.expiresAt - this.clock.now();
    if (left <= 0) {
      this.entries.delete(key);
      return undefined;
    }
    return { value: entry.value, ttl: Math.ceil(left / 1000) };
  }

  /** A TTL of 0 means "do not cache" (RFC 1035 3.2.1). The oldest entry goes when full. */
  set(key: string, value: V, ttlSeconds: number): void {
    if (ttlSeconds <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, expiresAt: this.clock.now() + ttlSeconds * 1000 });
  }

  get size(): number {
    return this.entries.size;
  }
}
