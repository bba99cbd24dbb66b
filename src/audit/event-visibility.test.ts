import { describe, expect, it } from "vitest";
import type { FirebreakConfig } from "../config/schema.js";
import type { Viewer } from "../policy/visibility.js";
import { canSeeEvent, type EventObject, eventObjectOf } from "./event-visibility.js";

const user = (name: string, groups: string[] = [], roles: Partial<Viewer> = {}): Viewer => ({
  name,
  groups,
  isAdmin: false,
  isAuditor: false,
  ...roles,
});

const config = {
  breakGlass: [{ name: "vault-emergency", review: { by: ["group:security"] } }],
} as unknown as Pick<FirebreakConfig, "breakGlass">;

const aliceGrant: EventObject = {
  kind: "grant",
  id: "grt_1",
  facts: { user: "alice", policy: "vault-emergency" },
};
const aliceRequest: EventObject = {
  kind: "request",
  id: "req_1",
  facts: { requester: "alice", approvalSteps: [{ from: ["group:leads"] }] },
};

describe("eventObjectOf", () => {
  it("names the grant first, then the request, from the subject or the context", () => {
    expect(eventObjectOf({ subject: "grt_1", context: { request: "req_1" } })).toEqual({
      kind: "grant",
      id: "grt_1",
    });
    expect(eventObjectOf({ subject: "req_1", context: {} })).toEqual({ kind: "request", id: "req_1" });
    expect(eventObjectOf({ subject: null, context: { grant: "grt_2" } })).toEqual({
      kind: "grant",
      id: "grt_2",
    });
    expect(eventObjectOf({ subject: "inc_1", context: {} })).toEqual({ kind: "none" });
  });
});

describe("canSeeEvent", () => {
  const refusal = { actor: "frank", context: { grant: "grt_1", owner: "alice", reason: "NOT_FOUND" } };

  it("does not show someone their refusal on a grant they cannot see", () => {
    expect(canSeeEvent(user("frank", ["dev"]), refusal, aliceGrant, config)).toBe(false);
  });

  it("shows the refusal to the grant's user, its reviewers, administrators and auditors", () => {
    expect(canSeeEvent(user("alice"), refusal, aliceGrant, config)).toBe(true);
    expect(canSeeEvent(user("erin", ["security"]), refusal, aliceGrant, config)).toBe(true);
    expect(canSeeEvent(user("boss", [], { isAdmin: true }), refusal, aliceGrant, config)).toBe(true);
    expect(canSeeEvent(user("eve", [], { isAuditor: true }), refusal, aliceGrant, config)).toBe(true);
  });

  it("decides request events by the request's own visibility", () => {
    const created = { actor: "alice", context: { requester: "alice" } };
    expect(canSeeEvent(user("carol", ["leads"]), created, aliceRequest, config)).toBe(true);
    expect(canSeeEvent(user("bob", ["sre"]), created, aliceRequest, config)).toBe(false);
  });

  it("does not let a name in the context stand in for the object's own facts", () => {
    const forged = { actor: "bob", context: { user: "bob", requester: "bob" } };
    expect(canSeeEvent(user("bob", ["sre"]), forged, aliceGrant, config)).toBe(false);
    expect(canSeeEvent(user("bob", ["sre"]), forged, aliceRequest, config)).toBe(false);
  });

  it("hides events about objects that do not exist from everyone but administrators and auditors", () => {
    const missing: EventObject = { kind: "grant", id: "grt_x", facts: null };
    expect(canSeeEvent(user("frank"), { actor: "frank", context: {} }, missing, config)).toBe(false);
    expect(
      canSeeEvent(user("eve", [], { isAuditor: true }), { actor: "x", context: {} }, missing, config),
    ).toBe(true);
  });

  it("shows events about no request or grant to whom they concern, and to nobody else", () => {
    const none: EventObject = { kind: "none" };
    expect(canSeeEvent(user("alice"), { actor: "alice", context: {} }, none, config)).toBe(true);
    expect(canSeeEvent(user("alice"), { actor: "admin", context: { user: "alice" } }, none, config)).toBe(
      true,
    );
    expect(canSeeEvent(user("alice"), { actor: "system:firebreak", context: {} }, none, config)).toBe(false);
    expect(canSeeEvent(user("alice"), { actor: "admin", context: { user: "bob" } }, none, config)).toBe(
      false,
    );
  });
});
