import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import { type AuditListQuery, listAuditEvents, readHead, streamAllEvents } from "./audit.repo.js";
import { type AuditEvent, type ChainHead, createChainVerifier, type VerifyResult } from "./chain.js";

// Verification reads in pages, outside any transaction (a long transaction would stall every
// writer on SQLite's single connection), so appends may land while it runs; each pass catches up.
// Bounded so a log that never stops growing still gets an answer about what was read.
const MAX_VERIFY_PASSES = 10;

/** Reading, verifying and exporting the audit chain. Appending lives in the repository, inside callers' transactions. */
export function createAuditService(deps: { db: Db }) {
  const { db } = deps;

  return {
    /** One page of events in seq order (see AuditListQuery for filters and cursors). */
    list(query: AuditListQuery = {}): Promise<AuditEvent[]> {
      return listAuditEvents(db, query);
    },

    /** The seq and hash of the newest event. */
    head(): Promise<ChainHead> {
      return readHead(db);
    },

    /**
     * Recomputes the whole chain and checks it against the head row: OK with the count, or the
     * first broken seq and why. Safe while appends continue.
     */
    async verify(): Promise<VerifyResult> {
      const verifier = createChainVerifier();
      const readOn = async (): Promise<boolean> => {
        for await (const record of streamAllEvents(db, { afterSeq: verifier.lastSeq })) {
          if (verifier.push(record)) return false;
        }
        return true;
      };

      for (let pass = 0; pass < MAX_VERIFY_PASSES; pass++) {
        if (!(await readOn())) return verifier.finish();
        const head = await readHead(db);
        if (head.seq <= verifier.lastSeq) return verifier.finish(head);
        // The head moved past what was read: events committed meanwhile, and since each commits
        // with its head update, every seq up to head.seq exists now. Missing ones were removed.
        verifier.expect(head);
        if (!(await readOn())) return verifier.finish();
        if (verifier.lastSeq < head.seq) return verifier.finish(head);
      }
      // Every pass found new events: the chain is intact up to the last head checked inside it.
      return verifier.finish();
    },

    /**
     * Writes every event after `afterSeq` as one line of JSON followed by `\n`, in seq order,
     * awaiting `write` so a slow destination applies back-pressure. Returns how many were written.
     */
    async exportJsonLines(
      write: (line: string) => void | Promise<void>,
      options: { afterSeq?: number } = {},
    ): Promise<{ count: number; lastSeq: number }> {
      let count = 0;
      let lastSeq = options.afterSeq ?? 0;
      for await (const record of streamAllEvents(db, { afterSeq: lastSeq })) {
        if ("unreadable" in record) {
          throw new FirebreakError(
            "INTERNAL",
            `audit event ${record.seq} cannot be read (${record.unreadable}); run \`firebreak audit verify\``,
          );
        }
        await write(`${JSON.stringify(record)}\n`);
        count++;
        lastSeq = record.seq;
      }
      return { count, lastSeq };
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
