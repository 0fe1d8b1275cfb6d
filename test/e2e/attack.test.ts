/**
 * Under attack, mail still flows (scripts/attack-run.ts): the built relay
 * with RELAY_MAX_CONNECTIONS=500, hit by 500 abusive connections at once
 * from addresses outside its relay networks (slowloris, connect-and-hold,
 * garbage, oversized lines and never-ending DATA, AUTH guessing over
 * STARTTLS), keeps accepting and delivering legitimate mail (SMTP from the
 * relay networks and the HTTP API) at no less than half the rate it has
 * without the attack, measured in the same run; the per-address limit and
 * the AUTH throttle hold, and the relay is still alive at the end.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ATTACK_DEFAULTS, formatAttackReport, runAttack } from "../../scripts/attack-run.ts";
import { DEFAULT_AUTH_THROTTLE } from "../../src/ingress/auth-throttle.ts";
import { testBinary } from "../helpers/relay-process.ts";

const seed = Number(process.env.ATTACK_SEED ?? Date.now() % 1_000_000);

describe("500 abusive connections", {
  skip: testBinary ? undefined : "needs the built relay (npm test builds it)",
}, () => {
  it("do not stop legitimate mail, and every limit holds", { timeout: 300_000 }, async () => {
    const attack = async (runSeed: number) => {
      const result = await runAttack({
        ...ATTACK_DEFAULTS,
        binary: testBinary!,
        connections: 500,
        messages: 2000,
        seed: runSeed,
      });
      const text = `${formatAttackReport(result)}\n(ATTACK_SEED=${runSeed})`;
      console.log(text);
      return { r: result, report: text };
    };
    // Relay, load, sink and abusers share the machine's two cores: a rate can halve for reasons of its own.
    // A run short of the ratio is measured once more; two in a row are the relay's doing.
    let { r, report } = await attack(seed);
    if (r.ratio < 0.5) ({ r, report } = await attack(seed + 1));

    // Legitimate mail: all of it acknowledged, everything acknowledged delivered, at half the calm rate or better.
    for (const flow of [r.unattacked, r.attacked, r.unattackedAfter]) {
      assert.equal(flow.acknowledged, flow.offered, report);
      assert.deepEqual(flow.missing, [], report);
    }
    assert.ok(r.ratio >= 0.5, `legitimate rate under attack / without: ${r.ratio.toFixed(2)}\n${report}`);

    // The relay networks were never refused (above), while outsiders were, over the places kept for them.
    const full = "421 4.3.2 Too many connections, try again later";
    assert.ok(Object.values(r.abuse).some((t) => (t.replies[full] ?? 0) > 0), `nobody was refused: ${report}`);

    // One address: RELAY_MAX_CONNECTIONS_PER_IP sessions, the rest 421.
    assert.equal(r.perAddress.greeted, r.limits.maxConnectionsPerIp, report);
    assert.equal(r.perAddress.refusals.length, r.perAddress.tried - r.limits.maxConnectionsPerIp);
    for (const refusal of r.perAddress.refusals) {
      assert.match(refusal, /^421 4\.7\.0 \S+ Too many connections from your address/);
    }

    // AUTH guessing: no more wrong passwords checked from one address than the throttle allows, then
    // 454 4.7.0, even for the right password; from another address the right password works.
    assert.ok(r.auth.mostCheckedFromOneAddress > 0, report);
    assert.ok(r.auth.mostCheckedFromOneAddress <= DEFAULT_AUTH_THROTTLE.refuseAfter, report);
    assert.ok(r.auth.lockedOut > 0, report);
    assert.match(r.rightPassword.fromGuesser, /^454 4\.7\.0 /);
    assert.match(r.rightPassword.fromFresh, /^235 2\.7\.0 /);

    // Oversized lines: 500 5.5.2 for a command line a hundred times too long, twice per connection.
    const oversized = r.abuse.oversized;
    assert.ok(oversized.greeted > 0, report);
    assert.equal(oversized.replies["500 5.5.2"], 2 * oversized.greeted, report);
    // Garbage: cut off after too many errors.
    assert.ok((r.abuse.garbage.replies["421 4.7.0 Too many errors, closing channel"] ?? 0) > 0, report);

    assert.equal(r.alive, true, report);
  });
});
