import { isIP } from "node:net";
import { networkInterfaces } from "node:os";

/**
 * This node's own addresses, read at each call: those on its interfaces now
 * (they come and go), and the configured ones, which a node may own before
 * they are up (RELAY_SOURCE_IP, the listeners' addresses; names are skipped).
 */
export function ownAddresses(configured: readonly string[]): () => string[] {
  const fixed = configured.filter((address) => isIP(address) !== 0);
  return () => [...fixed, ...Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address))];
}
