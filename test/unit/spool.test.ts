import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type BodyRef, BodySpool } from "../../src/queue/spool.ts";
import { SpoolFileWriter } from "../../src/queue/spool-file.ts";

const dirs: string[] = [];
const spools: BodySpool[] = [];
const writer = new SpoolFileWriter();
after(async () => {
  writer.close();
  for (const s of spools) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function open(dir = fresh(), segmentBytes?: number): Promise<BodySpool> {
  const spool = await BodySpool.open(dir, segmentBytes);
  spools.push(spool);
  return spool;
}

function fresh(): string {
  const dir = mkdtempSync(join(tmpdir(), "relay-spool-"));
  dirs.push(dir);
  return join(dir, "spool");
}

const bytes = (text: string) => new TextEncoder().encode(text);

/** Place and write, as the database worker does before the batch; the append stays unsettled. */
function append(spool: BodySpool, bodies: Uint8Array[]): BodyRef[] {
  const { refs, write } = spool.place(bodies);
  writer.write(write);
  return refs;
}
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The descriptors this process has open on files in `dir` (not the whole process's: other tests may run beside). */
function openIn(dir: string): number {
  const prefix = `${realpathSync(dir)}/`;
  let count = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(prefix)) count += 1;
    } catch {
      // closed since the listing
    }
  }
  return count;
}

describe("BodySpool", () => {
  it("appends bodies one after the other and reads each back exactly", async () => {
    const spool = await open();
    const refs = append(spool, [bytes("first"), bytes(""), bytes("second body")]);
    assert.deepEqual(
      refs.map((r) => [r.offset, r.length]),
      [
        [0, 5],
        [5, 0],
        [5, 11],
      ],
    );
    const more = append(spool, [bytes("third")]);
    assert.equal(more[0]!.offset, 16);
    assert.equal(new Set([...refs, ...more].map((r) => r.segment)).size, 1);
    assert.deepEqual(await Promise.all([...refs, ...more].map(async (r) => text(await spool.read(r)))), [
      "first",
      "",
      "second body",
      "third",
    ]);
    const file = readFileSync(join(spool.dir, readdirSync(spool.dir)[0]!), "latin1");
    assert.equal(file, "firstsecond bodythird", "nothing but the bodies on disk");
  });

  it("starts a new segment when the active one would grow past its size, and for a body larger than a segment", async () => {
    const spool = await open(fresh(), 10);
    const [a] = append(spool, [bytes("12345678")]);
    const [b] = append(spool, [bytes("abc")]);
    const [c] = append(spool, [bytes("a body longer than ten")]);
    assert.notEqual(a!.segment, b!.segment);
    assert.notEqual(b!.segment, c!.segment);
    assert.equal(c!.offset, 0);
    assert.equal(text(await spool.read(c!)), "a body longer than ten");
    assert.deepEqual(spool.segments(), [a!.segment, b!.segment, c!.segment]);
    assert.equal(spool.activeSegment, c!.segment);
  });

  it("never appends to a segment an earlier run left (its tail may hold half a write)", async () => {
    const dir = fresh();
    const first = await open(dir);
    const [old] = append(first, [bytes("kept")]);
    await first.close();
    writeFileSync(join(dir, readdirSync(dir)[0]!), "keptHALF-WRITTEN");
    const second = await open(dir);
    assert.deepEqual(second.segments(), [old!.segment]);
    const [fresh1] = append(second, [bytes("new")]);
    assert.ok(fresh1!.segment > old!.segment);
    assert.equal(fresh1!.offset, 0);
    assert.equal(text(await second.read(old!)), "kept");
    assert.equal(text(await second.read(fresh1!)), "new");
  });

  it("reads past the end of a segment as an error, not as short bytes", async () => {
    const spool = await open();
    const [ref] = append(spool, [bytes("short")]);
    await assert.rejects(spool.read({ ...ref!, length: 50 }), /ends before/);
    await assert.rejects(spool.read({ segment: 999, offset: 0, length: 1 }), { code: "ENOENT" });
  });

  it("keeps a bounded number of segments open for reading", async () => {
    const dir = fresh();
    const spool = await open(dir, 1);
    const refs = Array.from({ length: 40 }, (_, i) => append(spool, [bytes(`body ${i}`)])[0]!);
    const open0 = openIn(dir);
    for (const ref of refs) await spool.read(ref);
    assert.ok(openIn(dir) - open0 <= 32, "at most 32 more descriptors on segments");
    assert.deepEqual(
      await Promise.all(refs.map(async (r) => text(await spool.read(r)))),
      refs.map((_, i) => `body ${i}`),
    );
  });

  it("removes only closed segments that are settled and not being read", async () => {
    const spool = await open(fresh(), 4);
    const first = append(spool, [bytes("aaaa")]);
    assert.equal(await spool.remove(first[0]!.segment), false, "the active segment takes appends");
    const second = append(spool, [bytes("bbbb")]);
    assert.equal(await spool.remove(first[0]!.segment), false, "its write is not settled: rows may not be visible yet");
    spool.settle(first);
    const reading = spool.read(first[0]!);
    assert.equal(await spool.remove(first[0]!.segment), false, "a read is under way");
    assert.equal(text(await reading), "aaaa");
    assert.equal(await spool.remove(first[0]!.segment), true);
    assert.deepEqual(spool.segments(), [second[0]!.segment]);
    assert.deepEqual(readdirSync(spool.dir).length, 1);
    await assert.rejects(spool.read(first[0]!), { code: "ENOENT" });
  });

  it("tells whether a segment took an append since a point in the sequence", async () => {
    const spool = await open(fresh(), 4);
    const first = append(spool, [bytes("aaaa")]);
    const segment = first[0]!.segment;
    assert.equal(spool.touchedSince(segment, spool.sequence), true, "unsettled");
    spool.settle(first);
    const mark = spool.sequence;
    assert.equal(spool.touchedSince(segment, mark), false);
    assert.equal(spool.touchedSince(segment, mark - 1), true, "settled after the earlier mark");
  });

  it("after a failed write, the next placement goes to a new segment", async () => {
    const spool = await open();
    const first = append(spool, [bytes("one")]);
    spool.settle(first);
    const notBytes = { byteLength: 3 } as Uint8Array; // writev refuses it: a failed write without a full disk
    const { refs, write } = spool.place([notBytes]);
    assert.throws(() => writer.write(write));
    spool.failed(refs);
    spool.settle(refs);
    const [b] = append(spool, [bytes("two")]);
    assert.ok(b!.segment > first[0]!.segment);
    assert.equal(b!.offset, 0);
    assert.equal(text(await spool.read(b!)), "two");
    assert.equal(await spool.remove(first[0]!.segment), true, "the failed write was settled: nothing refers to it");
  });

  it("places writes that follow one another in a segment, created by the first", async () => {
    const spool = await open();
    const a = spool.place([bytes("ab"), bytes("c")]);
    const b = spool.place([bytes("def")]);
    assert.equal(a.write.create, true);
    assert.equal(b.write.create, false);
    assert.equal(a.write.path, b.write.path);
    assert.deepEqual([a.write.offset, b.write.offset], [0, 3]);
    const other = new SpoolFileWriter(); // fresh: opens the file as the write says
    other.write(a.write);
    other.write(b.write);
    assert.equal(readFileSync(a.write.path, "latin1"), "abcdef");
    other.close();
    assert.throws(() => other.write(a.write), { code: "EEXIST" }, "a new segment is never opened over an old file");
  });
});
