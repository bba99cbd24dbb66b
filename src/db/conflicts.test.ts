import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/databases.js";
import { FirebreakError } from "../errors.js";
import { createManualClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";
import { isRetryableConflict, uniqueViolation, violatesKey } from "./conflicts.js";
import { createTransactionRunner } from "./transaction.js";

describe("database conflicts", () => {
  it("recognises unique violations of both dialects and the retryable failures of PostgreSQL", () => {
    const pg = Object.assign(new Error("duplicate key"), {
      code: "23505",
      constraint: "grants_active_key_key",
    });
    expect(uniqueViolation(pg)).toEqual({ key: "grants_active_key_key" });
    expect(violatesKey(pg, "active_key")).toBe(true);
    expect(violatesKey(pg, "request_id")).toBe(false);
    const sqlite = Object.assign(new Error("UNIQUE constraint failed: grants.request_id"), {
      code: "SQLITE_CONSTRAINT_UNIQUE",
    });
    expect(violatesKey(sqlite, "request_id")).toBe(true);
    expect(uniqueViolation(new Error("boom"))).toBeNull();
    expect(uniqueViolation(null)).toBeNull();
    expect(isRetryableConflict({ code: "40001" })).toBe(true);
    expect(isRetryableConflict({ code: "40P01" })).toBe(true);
    expect(isRetryableConflict({ code: "23505" })).toBe(false);
  });

  describe("the transaction runner", () => {
    let database: TestDatabase;
    beforeEach(async () => {
      database = await createTestDatabase("sqlite");
    });
    afterEach(async () => {
      await database.drop();
    });
    const runner = () =>
      createTransactionRunner({ db: database.handle.db, clock: createManualClock(0), bus: createEventBus() });

    it("runs again a transaction rolled back for a serialization failure, and gives up with CONFLICT", async () => {
      const inTransaction = runner();
      let runs = 0;
      const value = await inTransaction(async () => {
        runs++;
        if (runs === 1) throw Object.assign(new Error("could not serialize"), { code: "40001" });
        return "done";
      });
      expect([value, runs]).toEqual(["done", 2]);

      runs = 0;
      const always = inTransaction(async () => {
        runs++;
        throw Object.assign(new Error("deadlock detected"), { code: "40P01" });
      });
      await expect(always).rejects.toMatchObject({ code: "CONFLICT", status: 409 });
      expect(runs).toBe(3);
    });

    it("turns a unique violation nobody named into CONFLICT without the driver's words, and never retries it", async () => {
      const inTransaction = runner();
      let runs = 0;
      const failed = await inTransaction(async () => {
        runs++;
        throw Object.assign(new Error('duplicate key value violates unique constraint "x_key"'), {
          code: "23505",
        });
      }).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(FirebreakError);
      expect((failed as FirebreakError).code).toBe("CONFLICT");
      expect((failed as FirebreakError).message).not.toContain("x_key");
      expect(runs).toBe(1);
      // Other errors pass through untouched.
      const plain = new Error("something else");
      await expect(inTransaction(async () => Promise.reject(plain))).rejects.toBe(plain);
    });
  });
});
