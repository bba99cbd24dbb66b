import { type Kysely, PostgresAdapter, sql } from "kysely";

// Input limits live in one place: the zod schemas at the edge (HTTP bodies, signal payloads, the
// configuration). Column widths were a second, disagreeing set: PostgreSQL refused a 5,000
// character Alertmanager summary the schema allows (`incidents.title varchar(500)`) and failed the
// whole delivery with a 500, while SQLite, which never enforces a declared length, stored it.
// Every varchar column becomes `text` on PostgreSQL, which stores both the same way: a varchar to
// text change rewrites neither the table nor its indexes. SQLite needs nothing (its declared
// types are affinities). Kysely's own bookkeeping tables are left as they are. Frozen once landed;
// a later varchar column is caught by src/db/input-limits.test.ts.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  const { rows } = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
    where table_schema = current_schema() and data_type = 'character varying'
      and table_name not like 'kysely\\_%'
    order by table_name, ordinal_position`.execute(db);
  const byTable = new Map<string, string[]>();
  for (const row of rows)
    byTable.set(row.table_name, [...(byTable.get(row.table_name) ?? []), row.column_name]);
  for (const [table, columns] of byTable) {
    const changes = columns.map((column) => sql`alter column ${sql.ref(column)} type text`);
    await sql`alter table ${sql.table(table)} ${sql.join(changes)}`.execute(db);
  }
}

// Nothing to undo: the widths were the defect, and a narrower column could no longer hold what
// was stored since.
// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(_db: Kysely<any>): Promise<void> {}
