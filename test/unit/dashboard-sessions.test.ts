/**
 * The dashboard's sessions (src/dashboard/sessions.ts): random ids and CSRF
 * tokens, idle and absolute expiry on an injected clock, a bounded number.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { csrfMatches, SessionStore } from "../../src/dashboard/sessions.ts";
import { ADMIN_PRINCIPAL } from "../../src/http/auth.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const limits = { idleMs: 1000, lifetimeMs: 5000, max: 3 };

describe("SessionStore", () => {
  it("gives each session a random id and CSRF token of 256 bits, and finds it by id", () => {
    const sessions = new SessionStore(new FakeClock(), limits);
    const a = sessions.create(ADMIN_PRINCIPAL);
    const b = sessions.create(ADMIN_PRINCIPAL);
    for (const value of [a.id, a.csrf, b.id, b.csrf]) assert.match(value, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(new Set([a.id, a.csrf, b.id, b.csrf]).size, 4);
    assert.equal(sessions.get(a.id), a);
    assert.equal(sessions.get(a.csrf), undefined, "the CSRF token is not a session id");
    assert.equal(sessions.get("nonsense"), undefined);
    assert.equal(sessions.get(undefined), undefined);
  });

  it("ends a session after its idle time; each request renews it", async () => {
    const clock = new FakeClock();
    const sessions = new SessionStore(clock, limits);
    const session = sessions.create(ADMIN_PRINCIPAL);
    await clock.advance(999);
    assert.equal(sessions.get(session.id), session);
    await clock.advance(999);
    assert.equal(sessions.get(session.id), session, "renewed by the previous request");
    await clock.advance(1000);
    assert.equal(sessions.get(session.id), undefined);
    assert.equal(sessions.size, 0);
  });

  it("ends a session at the end of its lifetime however active it is", async () => {
    const clock = new FakeClock();
    const sessions = new SessionStore(clock, limits);
    const session = sessions.create(ADMIN_PRINCIPAL);
    for (let t = 0; t < 4; t++) {
      await clock.advance(900);
      assert.equal(sessions.get(session.id), session);
    }
    await clock.advance(1400);
    assert.equal(sessions.get(session.id), undefined);
  });

  it("keeps at most `max` sessions, ending the oldest, and drops ended ones at the next login", async () => {
    const clock = new FakeClock();
    const sessions = new SessionStore(clock, limits);
    const [first, second, third] = [1, 2, 3].map(() => sessions.create(ADMIN_PRINCIPAL));
    const fourth = sessions.create(ADMIN_PRINCIPAL);
    assert.equal(sessions.size, 3);
    assert.equal(sessions.get(first!.id), undefined);
    for (const s of [second!, third!, fourth]) assert.equal(sessions.get(s.id), s);
    await clock.advance(2000);
    sessions.create(ADMIN_PRINCIPAL);
    assert.equal(sessions.size, 1);
  });

  it("ends a session on logout", () => {
    const sessions = new SessionStore(new FakeClock(), limits);
    const session = sessions.create(ADMIN_PRINCIPAL);
    sessions.end(session.id);
    assert.equal(sessions.get(session.id), undefined);
  });
});

describe("csrfMatches", () => {
  it("accepts the session's own token only", () => {
    const sessions = new SessionStore(new FakeClock(), limits);
    const session = sessions.create(ADMIN_PRINCIPAL);
    const other = sessions.create(ADMIN_PRINCIPAL);
    assert.equal(csrfMatches(session, session.csrf), true);
    assert.equal(csrfMatches(session, other.csrf), false);
    assert.equal(csrfMatches(session, session.csrf.slice(1)), false);
    assert.equal(csrfMatches(session, ""), false);
    assert.equal(csrfMatches(session, undefined), false);
    assert.equal(csrfMatches(session, ["x"]), false);
  });
});
