import type { ConfigStateTable, Executor } from "../db/types.js";

/** The configuration last applied (one row, id 1), or undefined before the first start. */
export function readConfigState(db: Executor): Promise<ConfigStateTable | undefined> {
  return db.selectFrom("config_state").selectAll().where("id", "=", 1).executeTakeFirst();
}

/**
 * Records `values` as the applied configuration if the stored row is still the one read (its digest
 * is `expectedDigest`), or if there is none yet when `expectedDigest` is null: a compare-and-set, so
 * of several processes recording at once exactly one wins. True when this call wrote the row.
 */
export async function compareAndSetConfigState(
  db: Executor,
  expectedDigest: string | null,
  values: Omit<ConfigStateTable, "id">,
): Promise<boolean> {
  if (expectedDigest !== null) {
    const result = await db
      .updateTable("config_state")
      .set(values)
      .where("id", "=", 1)
      .where("digest", "=", expectedDigest)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
  const result = await db
    .insertInto("config_state")
    .values({ id: 1, ...values })
    .onConflict((conflict) => conflict.column("id").doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}
