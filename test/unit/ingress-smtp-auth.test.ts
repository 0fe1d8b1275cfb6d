import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AuthThrottle, DEFAULT_AUTH_THROTTLE } from "../../src/ingress/auth-throttle.ts";
import { smtpHooks } from "../../src/ingress/smtp-hooks.ts";
import type { Ingress } from "../../src/ingress/submit.ts";
import type { SessionInfo } from "../../src/smtp/server/index.ts";

/** The AUTH hook with the real throttle on a fixed clock; waits are recorded, not slept. */
function harness() {
  const slept: number[] = [];
  const checked: string[] = [];
  let running = 0;
  const most = { checks: 0 };
  const hooks = smtpHooks({
    ingress: {} as Ingress,
    policy: { relayNetworks: [], literals: { routes: [], ownAddresses: () => [] } },
    authenticator: {
      authenticate: async (_username, password) => {
        checked.push(password);
        most.checks = Math.max(most.checks, ++running);
        await new Promise((resolve) => setTimeout(resolve, 1));
        running--;
        return password === "right" ? { domains: [], lane: "transactional", scan: null } : undefined;
      },
    },
    throttle: new AuthThrottle({ now: () => 0 }, DEFAULT_AUTH_THROTTLE, async () => undefined),
    sleep: async (ms) => void slept.push(ms),
  });
  const session = (remoteAddress: string): SessionInfo => ({
    id: "s",
    remoteAddress,
    remotePort: 40000,
    localAddress: "127.0.0.1",
    localPort: 587,
    secure: true,
  });
  const auth = (from: string, password: string) =>
    hooks.onAuth!(session(from), { mechanism: "PLAIN", username: "alice", password });
  return { auth, slept, checked, most };
}

describe("the SMTP AUTH hook and its throttle", () => {
  it("checks at most refuseAfter guesses sent at once from one address; the rest are 454 4.7.0", async () => {
    const { auth, checked, most } = harness();
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => auth("192.0.2.7", `guess-${i}`)));
    assert.equal(checked.length, DEFAULT_AUTH_THROTTLE.refuseAfter);
    // The first one at once, the other nine suspects one at a time after it: never more than two at once.
    assert.ok(most.checks <= 2, `${most.checks} passwords checked at once`);
    assert.equal(answers.filter((a) => a?.code === 535 && a.enhanced === "5.7.8").length, 10);
    assert.equal(answers.filter((a) => a?.code === 454 && a.enhanced === "4.7.0").length, 20);
    // Locked out, even with the right password; another address is not.
    assert.equal((await auth("192.0.2.7", "right"))?.code, 454);
    assert.equal(await auth("192.0.2.8", "right"), undefined);
  });

  it("answers a locked-out address no faster than the slowest allowed attempt", async () => {
    const { auth, slept } = harness();
    for (let i = 0; i < DEFAULT_AUTH_THROTTLE.refuseAfter; i++) await auth("198.51.100.9", `guess-${i}`);
    slept.length = 0;
    assert.equal((await auth("198.51.100.9", "again"))?.code, 454);
    assert.deepEqual(slept, [DEFAULT_AUTH_THROTTLE.maxDelayMs]);
  });
});
