import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connectionCap, effectiveMaxConnections } from "../../src/app/connection-cap.ts";
import { openFileLimit } from "../../src/platform/file-limit.ts";

const limits = (soft: string) =>
  `Limit                     Soft Limit           Hard Limit           Units     \n` +
  `Max processes             95107                95107                processes \n` +
  `Max open files            ${soft.padEnd(20)} 524288               files     \n`;

describe("the open-file limit", () => {
  it("is the soft limit of /proc/self/limits", () => {
    assert.equal(openFileLimit(() => limits("1024")), 1024);
    assert.equal(openFileLimit(() => limits("unlimited")), undefined);
    assert.equal(openFileLimit(() => ""), undefined);
    assert.equal(
      openFileLimit(() => {
        throw new Error("ENOENT");
      }),
      undefined,
    );
  });

  it("is read on this machine", () => {
    assert.ok((openFileLimit() ?? 0) > 0);
  });

  it("keeps a quarter (at least 64) for the rest of the relay and two descriptors a session", () => {
    assert.equal(connectionCap(256), 96);
    assert.equal(connectionCap(1024), 384);
    assert.equal(connectionCap(65536), 24576);
    assert.equal(connectionCap(10), 1);
  });

  it("lowers RELAY_MAX_CONNECTIONS only when the limit cannot hold it", () => {
    assert.deepEqual(effectiveMaxConnections(2000, 256), { max: 96, lowered: true });
    assert.deepEqual(effectiveMaxConnections(2000, 65536), { max: 2000, lowered: false });
    assert.deepEqual(effectiveMaxConnections(2000, undefined), { max: 2000, lowered: false });
  });
});
