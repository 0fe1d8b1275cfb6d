import type { Clock } from "../core/clock.ts";
import type { CredentialStore } from "../queue/credentials.ts";
import type { Database } from "../queue/database.ts";
import { throughOutbox } from "../queue/shared-writes.ts";
import { writeBatch } from "../queue/write-batch.ts";
import type { Partition } from "./partition.ts";
import { sharedUnreachable } from "./unreachable.ts";

/**
 * Idempotency keys in a fleet: kept on the shared server, so that a retry
 * through another node replays the answer. While the server does not
 * answer, a key waits in the node's outbox instead of failing a request
 * whose message is already queued; a retry through this node during the
 * partition is not recognised, one after it is.
 */
export function fleetIdempotency(
  credentials: Pick<CredentialStore, "findResponse" | "storeResponse" | "responseUpsert">,
  local: Database,
  partition: Partition,
  clock: Clock,
): Pick<CredentialStore, "findResponse" | "storeResponse"> {
  return {
    findResponse: (owner, key, maxAgeMs) => credentials.findResponse(owner, key, maxAgeMs),
    async storeResponse(owner, key, value) {
      try {
        await credentials.storeResponse(owner, key, value);
      } catch (error) {
        if (!sharedUnreachable(error)) throw error;
        partition.failed(error);
        const now = clock.now();
        await writeBatch(local, throughOutbox([credentials.responseUpsert(owner, key, value)], now));
      }
    },
  };
}
