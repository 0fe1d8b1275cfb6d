/** The delivery journal's files: what a later start recovers of them, and when they go. */
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DeliveryJournal } from "../../src/queue/delivery-journal.ts";
import type { Outcome } from "../../src/queue/records.ts";

const dirs: string[] = [];
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function journalDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "relay-journal-"));
  dirs.push(dir);
  return join(dir, "journal");
}

const delivered = (recipientId: number, padding = ""): Outcome => ({
  recipientId,
  messageId: `m${recipientId}`,
  address: `r${recipientId}@dest.test`,
  reply: `250 2.0.0 ok ${padding}`,
  state: "delivered",
  remoteMta: "mx.dest.test",
  event: { reply: "250 2.0.0 ok", attempt: 1 },
});

describe("the delivery journal", () => {
  it("what a killed run appended is recovered by the next, in order, and forgotten once recorded", () => {
    const dir = journalDir();
    const killed = DeliveryJournal.open(dir, () => {});
    killed.append([delivered(1), delivered(2)]);
    killed.append([delivered(3)]);
    const next = DeliveryJournal.open(dir, () => {});
    assert.deepEqual(next.recovered(), [delivered(1), delivered(2), delivered(3)]);
    next.forgetRecovered();
    assert.deepEqual(DeliveryJournal.open(dir, () => {}).recovered(), []);
  });

  it("a line cut short by the kill is skipped; the lines before it are kept", () => {
    const dir = journalDir();
    DeliveryJournal.open(dir, () => {}).append([delivered(1)]);
    appendFileSync(join(dir, readdirSync(dir)[0]!), JSON.stringify([delivered(2)]).slice(0, 40));
    assert.deepEqual(DeliveryJournal.open(dir, () => {}).recovered(), [delivered(1)]);
  });

  it("a full segment gives way to a new one, and goes once all it holds is committed", () => {
    const dir = journalDir();
    const journal = DeliveryJournal.open(dir, () => {});
    const big = "x".repeat(300_000);
    const settles = [1, 2, 3, 4].map((id) => journal.append([delivered(id, big)]));
    assert.equal(readdirSync(dir).length, 2, "four appends of 300 kB fill one segment of 1 MiB and start another");
    settles[1]!();
    settles[2]!();
    assert.equal(readdirSync(dir).length, 2, "the first segment still holds an uncommitted delivery");
    settles[0]!();
    assert.deepEqual(readdirSync(dir), ["delivered-2.log"]);
    assert.deepEqual(DeliveryJournal.open(dir, () => {}).recovered().map((o) => o.recipientId), [4]);
  });

  it("a clean stop leaves only what is not committed", () => {
    const dir = journalDir();
    const journal = DeliveryJournal.open(dir, () => {});
    journal.append([delivered(1)])();
    journal.close();
    assert.deepEqual(readdirSync(dir), []);
    const again = DeliveryJournal.open(dir, () => {});
    again.append([delivered(2)]);
    again.close();
    assert.deepEqual(DeliveryJournal.open(dir, () => {}).recovered().map((o) => o.recipientId), [2]);
  });

  it("a write the disk has no room for is logged once and costs only the journal's protection", () => {
    const dir = journalDir();
    const logged: string[] = [];
    const journal = DeliveryJournal.open(dir, (_level, message, fields) => logged.push(`${message}: ${fields?.error}`));
    symlinkSync("/dev/full", join(dir, "delivered-1.log")); // the segment it opens next: every write ENOSPC
    journal.append([delivered(1)])();
    journal.append([delivered(2)])();
    assert.equal(logged.length, 1, logged.join("\n"));
    assert.match(logged[0]!, /^writing the delivery journal failed: .*(ENOSPC|No space left on device)/);
  });
});
