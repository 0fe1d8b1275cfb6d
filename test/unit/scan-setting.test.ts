import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { UsageError } from "../../src/core/errors.ts";
import { scanLabel, scanOption } from "../../src/core/scan-setting.ts";

describe("--scan on|off", () => {
  it("reads on and off, blanks and case ignored", () => {
    assert.equal(scanOption("on"), true);
    assert.equal(scanOption(" OFF "), false);
  });

  it("refuses anything else, quoting it", () => {
    for (const bad of ["", "yes", "true", "1", "scope"]) {
      assert.throws(() => scanOption(bad), (error: unknown) => {
        assert.ok(error instanceof UsageError);
        assert.deepEqual(error.problems, [`scan ${JSON.stringify(bad)} is not valid: expected on or off`]);
        return true;
      });
    }
  });

  it("shows an unset setting as scope", () => {
    assert.deepEqual([true, false, null].map(scanLabel), ["on", "off", "scope"]);
  });
});
