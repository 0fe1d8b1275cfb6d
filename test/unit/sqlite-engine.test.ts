import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SqliteEngine } from "../../src/queue/sqlite-engine.ts";

function engine(): SqliteEngine {
  const e = new SqliteEngine(":memory:");
  e.execute({ sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL, b BLOB)" });
  return e;
}

describe("SqliteEngine (the database worker's libSQL driver)", () => {
  it("answers reads with columns and array rows, writes with rowsAffected and lastInsertRowid", () => {
    const e = engine();
    const inserted = e.execute({ sql: "INSERT INTO t (id, v) VALUES (?, ?), (?, ?)", args: [1, "a", 2, "b"] });
    assert.equal(inserted.rowsAffected, 2);
    assert.equal(inserted.lastInsertRowid, 2n);
    const read = e.execute({ sql: "SELECT id, v FROM t ORDER BY id" });
    assert.deepEqual(read.columns, ["id", "v"]);
    assert.deepEqual(read.rows, [[1, "a"], [2, "b"]]);
    e.close();
  });

  it("binds as @libsql/client does: booleans as 1/0, dates as milliseconds, named arguments; refuses undefined", () => {
    const e = engine();
    e.execute({ sql: "INSERT INTO t (id, v) VALUES (:id, :v)", args: { ":id": true, v: "named" } });
    e.execute({ sql: "INSERT INTO t (id, v) VALUES (?, ?)", args: [new Date(5), "dated"] });
    assert.deepEqual(e.execute({ sql: "SELECT id, v FROM t ORDER BY id" }).rows, [[1, "named"], [5, "dated"]]);
    assert.throws(() => e.execute({ sql: "INSERT INTO t (id, v) VALUES (?, ?)", args: [9, undefined] }), /undefined/);
    e.close();
  });

  it("stores exactly the bytes of a view into a larger buffer, and returns a blob as its own ArrayBuffer", () => {
    const e = engine();
    const whole = new Uint8Array(16).map((_, i) => i);
    e.execute({ sql: "INSERT INTO t (id, v, b) VALUES (1, 'x', ?)", args: [whole.subarray(4, 8)] });
    const [row] = e.execute({ sql: "SELECT b FROM t" }).rows;
    const blob = row![0] as ArrayBuffer;
    assert.ok(blob instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(blob)], [4, 5, 6, 7]);
    e.close();
  });

  it("a batch is one transaction: a failing statement rolls back the ones before it, and cached statements work on", () => {
    const e = engine();
    e.execute({ sql: "INSERT INTO t (id, v) VALUES (?, ?)", args: [1, "a"] });
    assert.throws(
      () =>
        e.batch(
          [
            { sql: "INSERT INTO t (id, v) VALUES (?, ?)", args: [2, "b"] },
            { sql: "INSERT INTO t (id, v) VALUES (?, ?)", args: [1, "duplicate"] },
          ],
          "write",
        ),
      /UNIQUE/,
    );
    e.execute({ sql: "INSERT INTO t (id, v) VALUES (?, ?)", args: [3, "c"] });
    assert.deepEqual(e.execute({ sql: "SELECT id FROM t ORDER BY id" }).rows, [[1], [3]]);
    assert.throws(() => e.batch([], "sideways"), /unknown transaction mode/);
    e.close();
  });
});
