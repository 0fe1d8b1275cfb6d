import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WorkerClient } from "../../src/queue/worker-client.ts";

describe("the database worker's queue", () => {
  it("runs an urgent write before the requests still waiting, and keeps the others in order", async () => {
    const client = await WorkerClient.open(":memory:", []);
    try {
      await client.execute("CREATE TABLE t (n INTEGER)");
      const order: string[] = [];
      const reads = Array.from(
        { length: 12 },
        (_, i) =>
          client.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) SELECT count(*) FROM c",
          )
            .then(() => void order.push(`read ${i}`)),
      );
      const urgent = client.urgentBatch([{ sql: "INSERT INTO t VALUES (1)", args: [] }]).then(() =>
        void order.push("urgent")
      );
      await Promise.all([...reads, urgent]);
      // Four were in the worker already; the urgent write went ahead of the eight still waiting.
      assert.deepEqual(order, [
        "read 0",
        "read 1",
        "read 2",
        "read 3",
        "urgent",
        ...Array.from({ length: 8 }, (_, i) => `read ${i + 4}`),
      ]);
      const { rows } = await client.execute("SELECT count(*) AS n FROM t");
      assert.equal(Number(rows[0]!.n), 1);
    } finally {
      await client.close();
    }
  });
});
