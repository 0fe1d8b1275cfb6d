import type { Clock } from "../../src/core/clock.ts";
import { createHttpApp, type HttpDeps } from "../../src/http/app.ts";
import { adminAuthenticator, anyAuthenticator, apiKeyAuthenticator, hashToken } from "../../src/http/auth.ts";
import { Ingress } from "../../src/ingress/submit.ts";
import type { CredentialStore } from "../../src/queue/credentials.ts";
import type { QueueStore } from "../../src/queue/store.ts";

/**
 * The HTTP API over a queue and a credential store: `adminToken` is the
 * admin's, API keys come from the store; at most 100 kB and 5 recipients a
 * message, no address literals, always ready. `deps` adds to that or
 * replaces it.
 */
export function httpAppOver(
  over: { store: QueueStore; credentials: CredentialStore; clock: Clock; adminToken: string },
  deps: Partial<HttpDeps> & Pick<HttpDeps, "log">,
): ReturnType<typeof createHttpApp> {
  const { store, credentials, clock, adminToken } = over;
  return createHttpApp({
    ingress: new Ingress({
      store,
      clock,
      hostname: "relay.test",
      onEnqueued: () => {},
      priorityHeader: deps.priorityHeader,
    }),
    store,
    authenticate: anyAuthenticator(
      adminAuthenticator(() => hashToken(adminToken)),
      apiKeyAuthenticator((hash) => credentials.findApiKey(hash)),
    ),
    idempotency: credentials,
    maxMessageBytes: 100_000,
    maxRecipients: 5,
    literals: { routes: [], ownAddresses: () => [] },
    ready: async () => true,
    clock,
    ...deps,
  });
}
