import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { openMilter, parseMilterEndpoint } from "../../src/milter/endpoint.ts";
import { MilterPool } from "../../src/milter/pool.ts";
import { type MilterPeer, startMilterPeer } from "../fixtures/milter-peer.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

describe("milter connection pool", () => {
  let peer: MilterPeer;
  before(async () => {
    peer = await startMilterPeer();
  });
  after(async () => {
    await peer?.close();
  });
  const open = () => openMilter(parseMilterEndpoint(peer.address));

  it("gives a kept connection back only for its own client, once", async () => {
    const pool = new MilterPool({ maxIdle: 4, idleMs: 60_000, clock: new FakeClock() });
    const session = await open();
    pool.give("client a", session);
    assert.equal(pool.take("client b"), undefined);
    assert.equal(pool.take("client a"), session);
    assert.equal(pool.take("client a"), undefined);
    await session.close();
    await pool.close();
  });

  it("closes a connection idle for idleMs, and the oldest past maxIdle", async () => {
    const clock = new FakeClock();
    const pool = new MilterPool({ maxIdle: 2, idleMs: 30_000, clock });
    const [first, second, third] = [await open(), await open(), await open()];
    pool.give("a", first!);
    pool.give("b", second!);
    pool.give("c", third!);
    assert.equal(pool.idleCount, 2);
    assert.equal(first!.usable, false, "the oldest was closed");
    await clock.advance(30_000);
    assert.equal(pool.idleCount, 0);
    assert.equal(second!.usable, false);
    assert.equal(third!.usable, false);
    await pool.close();
  });

  it("never keeps a connection that failed, nor any once closed", async () => {
    const pool = new MilterPool({ maxIdle: 4, idleMs: 60_000, clock: new FakeClock() });
    const broken = await open();
    await broken.close();
    pool.give("a", broken);
    assert.equal(pool.idleCount, 0);
    await pool.close();
    const late = await open();
    pool.give("a", late);
    assert.equal(pool.idleCount, 0);
    assert.equal(late.usable, false);
  });
});
