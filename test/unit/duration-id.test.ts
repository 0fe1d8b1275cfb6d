import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "../../src/core/duration.ts";
import { newId } from "../../src/core/id.ts";

describe("parseDuration", () => {
  it("reads every unit into milliseconds", () => {
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("30s"), 30_000);
    assert.equal(parseDuration("5m"), 300_000);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration("5d"), 432_000_000);
    assert.equal(parseDuration("0s"), 0);
  });

  it("reads fractions and surrounding spaces", () => {
    assert.equal(parseDuration("1.5h"), 5_400_000);
    assert.equal(parseDuration("0.5s"), 500);
    assert.equal(parseDuration(" 2m "), 120_000);
  });

  it("refuses text that is not one duration", () => {
    for (const text of ["", "5", "m", "5 m", "-5m", "5M", "5min", "1h30m", "1.h", ".5h", "5w", "5ms5", "1e3s"]) {
      assert.equal(parseDuration(text), undefined, text);
    }
  });
});

describe("formatDuration", () => {
  it("uses the largest unit that divides exactly", () => {
    assert.equal(formatDuration(432_000_000), "5d");
    assert.equal(formatDuration(7_200_000), "2h");
    assert.equal(formatDuration(5_400_000), "90m");
    assert.equal(formatDuration(90_000), "90s");
    assert.equal(formatDuration(1500), "1500ms");
    assert.equal(formatDuration(0), "0ms");
  });

  it("round-trips through parseDuration", () => {
    for (const ms of [0, 1, 999, 1000, 61_000, 300_000, 5_400_000, 86_400_000, 90_061_001]) {
      assert.equal(parseDuration(formatDuration(ms)), ms, String(ms));
    }
  });
});

const CROCKFORD = /^[0123456789ABCDEFGHJKMNPQRSTVWXYZ]{26}$/;

/** The ULID time part decoded back to milliseconds. */
const timeOf = (id: string) =>
  [...id.slice(0, 10)].reduce((acc, ch) => acc * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".indexOf(ch), 0);

describe("newId (ULID)", () => {
  it("is 26 characters of the Crockford base-32 alphabet (no I, L, O, U)", () => {
    for (let i = 0; i < 200; i++) assert.match(newId(1_700_000_000_000 + i), CROCKFORD);
    assert.match(newId(), CROCKFORD);
  });

  it("encodes the time in the first 10 characters", () => {
    assert.equal(newId(0).slice(0, 10), "0000000000");
    assert.equal(newId(1).slice(0, 10), "0000000001");
    assert.equal(newId(32).slice(0, 10), "0000000010");
    assert.equal(timeOf(newId(1_700_000_123_456)), 1_700_000_123_456);
    // The largest ULID time, 2^48 - 1 ms, fits.
    assert.equal(newId(2 ** 48 - 1).slice(0, 10), "7ZZZZZZZZZ");
  });

  it("ids sort by their time, whatever the random part", () => {
    const times = [0, 1, 31, 32, 1023, 1024, 1_600_000_000_000, 1_600_000_000_001, 1_700_000_000_000, 2 ** 47];
    const ids = times.map((t) => newId(t));
    const shuffled = [...ids].reverse();
    assert.deepEqual(shuffled.sort(), ids);
    for (let i = 0; i < 100; i++) assert.ok(newId(1_700_000_000_000) < newId(1_700_000_000_001));
  });

  it("ids made in the same millisecond differ", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newId(1_700_000_000_000)));
    assert.equal(ids.size, 1000);
  });
});
