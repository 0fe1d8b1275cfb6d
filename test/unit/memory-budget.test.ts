import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryBudget } from "../../src/core/memory-budget.ts";
import { MessageBuffer } from "../../src/smtp/protocol/message-buffer.ts";

describe("a memory budget", () => {
  it("grants whole reservations and makes the next wait its turn", async () => {
    const budget = new MemoryBudget(100);
    const a = budget.tryReserve(60)!;
    assert.equal(budget.tryReserve(50), undefined);
    const order: string[] = [];
    const b = budget.reserve(50, 10_000).then((r) => (order.push("b"), r));
    const c = budget.reserve(10, 10_000).then((r) => (order.push("c"), r));
    // c would fit now, but b asked first: first come, first served.
    await new Promise((ok) => setTimeout(ok, 10));
    assert.deepEqual(order, []);
    a.release();
    a.release();
    const [rb, rc] = await Promise.all([b, c]);
    assert.deepEqual(order, ["b", "c"]);
    assert.equal(budget.used, 60);
    rb!.release();
    rc!.release();
    assert.equal(budget.used, 0);
  });

  it("gives up after the wait, and lets those behind go", async () => {
    const budget = new MemoryBudget(100);
    const a = budget.tryReserve(90)!;
    const big = budget.reserve(100, 20);
    const small = budget.reserve(5, 10_000);
    assert.equal(await big, undefined);
    assert.equal((await small)!.bytes, 5);
    a.release();
  });

  it("holds a request larger than itself to its capacity, and grows only into free room", () => {
    const budget = new MemoryBudget(100);
    const r = budget.tryReserve(1_000)!;
    assert.equal(r.bytes, 100);
    assert.equal(r.grow(1), false);
    r.release();
    const s = budget.tryReserve(10)!;
    assert.ok(s.grow(50));
    assert.equal(s.bytes, 60);
    assert.equal(budget.used, 60);
  });
});

describe("a message buffer with its memory counted", () => {
  it("grows its reservation as the message outgrows it, and is starved when none is free", () => {
    const budget = new MemoryBudget(3 * 1024 * 1024);
    const memory = budget.tryReserve(10)!;
    const message = new MessageBuffer({ maxBytes: 10 * 1024 * 1024, maxLineLength: Infinity, memory });
    message.append(new Uint8Array(2 * 1024 * 1024).fill(65));
    assert.equal(message.starved, false);
    assert.ok(memory.bytes >= 2 * 1024 * 1024);
    message.append(new Uint8Array(2 * 1024 * 1024).fill(65));
    assert.equal(message.starved, true);
    assert.equal(message.overflow, false);
    assert.equal(message.size, 4 * 1024 * 1024);
  });
});
