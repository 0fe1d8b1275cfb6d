/** `relay check`'s open-file line: whether the limit holds RELAY_MAX_CONNECTIONS sessions with room for the rest. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkOpenFiles } from "../../src/check/open-files.ts";

describe("relay check: open files", () => {
  it("passes when the limit holds every session RELAY_MAX_CONNECTIONS allows", () => {
    assert.deepEqual(checkOpenFiles(2000, 65536), {
      status: "pass",
      what: "open files",
      detail: "limit 65536 here holds RELAY_MAX_CONNECTIONS=2000 SMTP sessions",
    });
  });

  it("warns, with the number serve will take, when the limit holds fewer", () => {
    const result = checkOpenFiles(2000, 1024);
    assert.equal(result.status, "warn");
    // A quarter (256) kept for the rest, two descriptors a session: (1024 - 256) / 2.
    assert.equal(result.detail, "limit 1024 here holds 384 SMTP sessions, fewer than RELAY_MAX_CONNECTIONS=2000");
    assert.match(result.fix ?? "", /LimitNOFILE=/);
  });

  it("passes, saying so, when no limit can be read", () => {
    assert.deepEqual(checkOpenFiles(2000, undefined), {
      status: "pass",
      what: "open files",
      detail: "no limit this relay can read; RELAY_MAX_CONNECTIONS=2000",
    });
  });
});
