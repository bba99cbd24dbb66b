import { beforeAll, describe, expect, test } from "vitest";
import { type ParsedStatement, parseStatements, ready } from "./classify.js";

beforeAll(() => ready());

function statements(sql: string): readonly ParsedStatement[] {
  const outcome = parseStatements(sql);
  if (!outcome.ok) throw new Error(`expected ${sql} to parse: ${outcome.error.message}`);
  return outcome.statements;
}
const summary = (sql: string) => statements(sql).map((s) => `${s.command}/${s.category}`);

describe("parseStatements", () => {
  test("commands and categories", () => {
    expect(summary("select 1")).toEqual(["SELECT/read"]);
    expect(summary("insert into t values (1)")).toEqual(["INSERT/write"]);
    expect(summary("update t set a = 1")).toEqual(["UPDATE/write"]);
    expect(summary("delete from t")).toEqual(["DELETE/write"]);
    expect(summary("truncate t")).toEqual(["TRUNCATE/write"]);
    expect(summary("drop table t")).toEqual(["DROP TABLE/ddl"]);
    expect(summary("drop materialized view v")).toEqual(["DROP MATERIALIZED VIEW/ddl"]);
    expect(summary("create table t (a int)")).toEqual(["CREATE TABLE/ddl"]);
    expect(summary("alter table t add column b int")).toEqual(["ALTER TABLE/ddl"]);
    expect(summary("grant select on t to u")).toEqual(["GRANT/privilege"]);
    expect(summary("alter role u superuser")).toEqual(["ALTER ROLE/privilege"]);
    expect(summary("set role postgres")).toEqual(["SET ROLE/privilege"]);
    expect(summary("set session authorization postgres")).toEqual(["SET SESSION AUTHORIZATION/privilege"]);
    expect(summary("set search_path = x")).toEqual(["SET/session"]);
    expect(summary("show work_mem")).toEqual(["SHOW/session"]);
    expect(summary("begin; commit; rollback")).toEqual([
      "BEGIN/transaction",
      "COMMIT/transaction",
      "ROLLBACK/transaction",
    ]);
    expect(summary("vacuum t")).toEqual(["VACUUM/utility"]);
    expect(summary("copy t to stdout")).toEqual(["COPY TO/read"]);
    expect(summary("copy t from stdin")).toEqual(["COPY FROM/write"]);
    expect(summary("copy t to program 'id'")).toEqual(["COPY TO/utility"]);
    expect(summary("select 1 into t2")).toEqual(["SELECT INTO/ddl"]);
  });

  test("a data-modifying part makes the statement a write", () => {
    expect(summary("with d as (delete from t returning *) select * from d")).toEqual(["SELECT/write"]);
    expect(summary("explain analyze delete from t")).toEqual(["EXPLAIN/write"]);
    expect(summary("explain delete from t")).toEqual(["EXPLAIN/read"]);
    expect(summary("prepare p as update t set a = 1")).toEqual(["PREPARE/write"]);
  });

  test("relations and functions are found anywhere, qualified as written", () => {
    const [cte] = statements(
      "with a as (select pg_catalog.pg_terminate_backend(pid) from pg_stat_activity where upper(usename) = 'X') select * from a join s.t on true",
    );
    expect(cte?.functions).toEqual(expect.arrayContaining(["pg_terminate_backend", "upper"]));
    expect(cte?.qualifiedFunctions).toContain("pg_catalog.pg_terminate_backend");
    expect(cte?.relations).toEqual(expect.arrayContaining(["pg_stat_activity", "s.t"]));
    expect(statements("select * from pg_terminate_backend(1)")[0]?.functions).toEqual([
      "pg_terminate_backend",
    ]);
    expect(statements("call maintenance.run(1)")[0]?.qualifiedFunctions).toEqual(["maintenance.run"]);
    expect(statements("drop table a, s.b")[0]?.relations).toEqual(["a", "s.b"]);
    expect(statements('select * from "Weird Name"')[0]?.relations).toEqual(["Weird Name"]);
  });

  test("comments, quotes and dollar quotes neither hide nor invent statements", () => {
    const tricks = statements(
      "/* drop table a; */ select 1 -- ; drop table b\n; select $x$; drop table c $x$; select 'a'';drop table d'; select $$;$$; DROP TABLE e",
    );
    expect(tricks.map((s) => s.command)).toEqual(["SELECT", "SELECT", "SELECT", "SELECT", "DROP TABLE"]);
    expect(tricks[4]?.relations).toEqual(["e"]);
    expect(tricks[4]?.text).toBe("DROP TABLE e");
    expect(summary("SELECT 1; DROP TABLE t")).toEqual(["SELECT/read", "DROP TABLE/ddl"]);
    // A nested comment PostgreSQL accepts: the statement inside is still a comment.
    expect(summary("select 1 /* a /* b */ ; drop table x */")).toEqual(["SELECT/read"]);
  });

  test("each statement keeps its own text, multi-byte characters included", () => {
    expect(statements("select 'é' ;  select 'ü' as x").map((s) => s.text)).toEqual([
      "select 'é'",
      "select 'ü' as x",
    ]);
  });

  test("opaque statements are marked", () => {
    expect(statements("do $$ begin drop table t; end $$")[0]?.opaque).toBe(true);
    expect(statements("execute p")[0]?.opaque).toBe(true);
    expect(statements("select 1")[0]?.opaque).toBe(false);
  });

  test("an empty or comment-only query has no statement; a bad one is an error with its position", () => {
    expect(parseStatements("")).toEqual({ ok: true, statements: [] });
    expect(parseStatements(" -- nothing\n")).toEqual({ ok: true, statements: [] });
    const bad = parseStatements("select 1; selec 2");
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.position).toBe(10);
    expect(parseStatements("select 1\u0000; drop table t").ok).toBe(false);
  });

  test("outcomes are cached and frozen", () => {
    const first = parseStatements("select 42");
    expect(parseStatements("select 42")).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });
});
