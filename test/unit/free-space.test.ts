/**
 * The data directory's free space against the reserve (src/queue/free-space.ts),
 * read through a stand-in for statfs: what ingress is told, and what is logged.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { FreeSpace } from "../../src/queue/free-space.ts";

const MIB = 1024 * 1024;

function freeSpace(reserve = 64 * MIB) {
  let free = 1024 * MIB;
  let answer: (() => void) | undefined;
  let slow = false;
  const lines: string[] = [];
  const space = new FreeSpace("/data", reserve, (level, message) => lines.push(`${level}: ${message}`), async () => {
    if (slow) await new Promise<void>((resolve) => (answer = resolve));
    return free;
  });
  return {
    space,
    lines,
    setFree: (bytes: number) => (free = bytes),
    /** The next measurement waits for `finish`. */
    slowly: () => {
      slow = true;
      return () => {
        slow = false;
        answer!();
      };
    },
  };
}

test("free space: room down to the reserve, a declared size counted", async () => {
  const { space, setFree } = freeSpace();
  assert.equal(space.hasRoom(), true, "unknown until measured: not refused");
  setFree(100 * MIB);
  await space.measure();
  assert.equal(space.hasRoom(), true);
  assert.equal(space.hasRoom(36 * MIB), true);
  assert.equal(space.hasRoom(36 * MIB + 1), false, "a message that would go below the reserve");
  setFree(64 * MIB - 1);
  await space.measure();
  assert.equal(space.hasRoom(), false);
});

test("free space: what is stored between measurements counts against the last one", async () => {
  const { space, setFree } = freeSpace();
  space.used(500 * MIB);
  assert.equal(space.hasRoom(), true, "nothing known to count against");
  setFree(100 * MIB);
  await space.measure();
  space.used(30 * MIB);
  assert.equal(space.hasRoom(6 * MIB), true);
  space.used(6 * MIB + 1);
  assert.equal(space.hasRoom(), false, "below the reserve by what was stored");
  await space.measure();
  assert.equal(space.hasRoom(), true, "the measurement says what is really free");
});

test("free space: a write that failed for lack of space refuses until a measurement taken after it", async () => {
  const { space, slowly } = freeSpace();
  await space.measure();
  const finish = slowly();
  const measuring = space.measure(); // began before the failure: it does not end the refusal
  space.ranOut(Object.assign(new Error("no space left on device"), { code: "ENOSPC" }));
  assert.equal(space.hasRoom(), false);
  finish();
  await measuring;
  assert.equal(space.hasRoom(), false, "a measurement from before the failure");
  await space.measure();
  assert.equal(space.hasRoom(), true);
});

test("free space: each change between taking and refusing mail is logged once", async () => {
  const { space, setFree, lines } = freeSpace();
  await space.measure();
  setFree(MIB);
  await space.measure();
  await space.measure();
  space.ranOut(new Error("full"));
  setFree(1024 * MIB);
  await space.measure();
  await space.measure();
  assert.deepEqual(lines, [
    "warn: the data directory's file system is full: new mail is refused until space returns",
    "info: the data directory's file system has room again: new mail is taken",
  ]);
});
