import { describe, expect, it } from "vitest";
import { isFirebreakError } from "../../errors.js";
import { grantTarget, parsePrivilege, quoteIdentifier, quoteString } from "./mariadb.privileges.js";

function refusal(entry: string): string {
  try {
    parsePrivilege(entry, "firebreak");
  } catch (error) {
    expect(isFirebreakError(error) && error.code).toBe("CONFIG_INVALID");
    return (error as Error).message;
  }
  throw new Error(`${JSON.stringify(entry)} was accepted`);
}

describe("parsePrivilege", () => {
  it("reads database, table and global targets into canonical keywords", () => {
    expect(parsePrivilege("SELECT, INSERT ON shop.*", "firebreak")).toEqual({
      privileges: ["SELECT", "INSERT"],
      level: "database",
      database: "shop",
      table: null,
    });
    expect(parsePrivilege("  select ,  show   view on shop.orders ", "firebreak")).toEqual({
      privileges: ["SELECT", "SHOW VIEW"],
      level: "table",
      database: "shop",
      table: "orders",
    });
    expect(parsePrivilege("ALL ON shop.*", "firebreak").privileges).toEqual(["ALL PRIVILEGES"]);
    expect(parsePrivilege("PROCESS, SHOW DATABASES ON *.*", "firebreak")).toMatchObject({ level: "global" });
  });

  it("escapes '_' in a database-level target so GRANT does not read it as a wildcard", () => {
    expect(grantTarget(parsePrivilege("SELECT ON shop_db.*", "firebreak"))).toBe("`shop\\_db`.*");
    expect(grantTarget(parsePrivilege("SELECT ON shop_db.order_lines", "firebreak"))).toBe(
      "`shop_db`.`order_lines`",
    );
    expect(grantTarget(parsePrivilege("PROCESS ON *.*", "firebreak"))).toBe("*.*");
  });

  it.each([
    "SELECT ON shop.*; DROP USER root",
    "SELECT ON shop.* TO 'evil'@'%'",
    "SELECT ON `shop`.*",
    "SELECT ON 'shop'.*",
    "SELECT ON shop.* -- comment",
    "SELECT ON shop.*/**/",
    "SELECT (id) ON shop.orders",
    "SELECT ON shop",
    "SELECT ON sh\u00f6p.*",
    "x'; DROP USER root; --",
    "SELECT ON shop.*\nDROP USER root",
    "",
  ])("refuses the shape of %j", (entry) => {
    expect(refusal(entry)).toContain("expected");
  });

  it.each([
    ["SELECT, GRANT OPTION ON shop.*", "outlive"],
    ["CREATE USER ON *.*", "outlive"],
    ["SUPER ON *.*", "outlive"],
    ["SET USER ON *.*", "outlive"],
    ["SELECTX ON shop.*", "not a privilege"],
    ["DROP DATABASE ON shop.*", "not a privilege"],
    ["ALL ON *.*", "*.*"],
    ["SELECT ON *.*", "*.*"],
    ["EVENT ON *.*", "*.*"],
    ["INSERT ON mysql.*", "belongs to the server"],
    ["INSERT ON MySQL.user", "belongs to the server"],
    ["EVENT ON firebreak.*", "belongs to the server or to Firebreak"],
    ["PROCESS ON shop.*", "only to *.*"],
    ["EXECUTE ON shop.orders", "whole database"],
    ["ALL, SELECT ON shop.*", "alone"],
    ["SELECT,, INSERT ON shop.*", "empty"],
    ["SELECT ON *.orders", "names no database"],
  ])("refuses %j", (entry, why) => {
    expect(refusal(entry)).toContain(why);
  });
});

describe("quoting", () => {
  it("doubles backquotes and quotes, and refuses what differs between SQL modes", () => {
    expect(quoteIdentifier("a`b")).toBe("`a``b`");
    expect(quoteString("x'; DROP USER root; --")).toBe("'x''; DROP USER root; --'");
    expect(() => quoteString("a\\'b")).toThrow(/every SQL mode/);
    expect(() => quoteIdentifier("")).toThrow();
  });
});
