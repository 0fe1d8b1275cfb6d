import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { unknownVariables } from "../../src/config/unknown-variables.ts";

describe("unknownVariables", () => {
  it("names a typo's closest known variable", () => {
    assert.deepEqual(unknownVariables({ RELAY_SMTP_LISTN: "0.0.0.0:25" }), [
      { name: "RELAY_SMTP_LISTN", closest: "RELAY_SMTP_LISTEN" },
    ]);
    assert.deepEqual(unknownVariables({ RELAY_MAX_RECIPENTS: "5" }), [
      { name: "RELAY_MAX_RECIPENTS", closest: "RELAY_MAX_RECIPIENTS" },
    ]);
  });

  it("a name near nothing known is reported without a guess", () => {
    assert.deepEqual(unknownVariables({ RELAY_FROBNICATE_EVERYTHING: "1" }), [{ name: "RELAY_FROBNICATE_EVERYTHING" }]);
  });

  it("known variables and other prefixes are not reported", () => {
    assert.deepEqual(
      unknownVariables({ RELAY_SMTP_LISTEN: "x", RELAY_LOG_LEVEL: "debug", PATH: "/bin", RELAYX: "1" }),
      [],
    );
  });
});
