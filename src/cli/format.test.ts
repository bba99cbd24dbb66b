import { describe, expect, it } from "vitest";
import { safeLines, safeText, table } from "./format.js";

describe("safeText", () => {
  it("keeps ordinary text, accents, other scripts and emoji as they are", () => {
    for (const text of ["clear the stuck slot", "zöne-ünïcødé", "データベース", "🔥 INC-4711", "a'b\"c$(x)"])
      expect(safeText(text)).toBe(text);
  });

  it("puts a reason with line breaks on one line, so it cannot draw a line of its own", () => {
    const forged = "slot stuck\n  approved by carol: ok\r\n  next: ready";
    const shown = safeText(forged);
    expect(shown).toBe("slot stuck\\n  approved by carol: ok\\r\\n  next: ready");
    expect(shown.split("\n")).toHaveLength(1);
  });

  it("shows every C0 and C1 control and DEL as a visible escape", () => {
    expect(safeText("a\tb")).toBe("a\\tb");
    expect(safeText("\u001b[2K\u001b[1Aapproved")).toBe("\\x1b[2K\\x1b[1Aapproved");
    expect(safeText("\u0000\u0007\u0008\u000b\u000c\u007f")).toBe("\\x00\\x07\\x08\\x0b\\x0c\\x7f");
    expect(safeText("\u0085\u009b31m")).toBe("\\x85\\x9b31m");
    for (let code = 0; code < 0x20; code++) expect(safeText(String.fromCharCode(code))).toMatch(/^\\/);
    for (let code = 0x7f; code < 0xa0; code++) expect(safeText(String.fromCharCode(code))).toMatch(/^\\/);
  });

  it("shows bidirectional controls, which reorder what a terminal draws, as escapes", () => {
    const controls = [
      "\u202a",
      "\u202b",
      "\u202c",
      "\u202d",
      "\u202e",
      "\u2066",
      "\u2067",
      "\u2068",
      "\u2069",
      "\u200e",
      "\u200f",
      "\u061c",
    ];
    for (const control of controls) {
      const shown = safeText(`INC-1${control}lortnoc`);
      expect(shown).toBe(`INC-1\\u${control.charCodeAt(0).toString(16).padStart(4, "0")}lortnoc`);
    }
  });

  it("shows other invisible format characters, separators and lone surrogates as escapes", () => {
    expect(safeText("vault\u200b")).toBe("vault\\u200b");
    expect(safeText("\ufeffBOM")).toBe("\\ufeffBOM");
    expect(safeText("line\u2028para\u2029")).toBe("line\\u2028para\\u2029");
    expect(safeText("soft\u00adhyphen")).toBe("soft\\xadhyphen");
    expect(safeText("tag\u{e0041}")).toBe("tag\\u{e0041}");
    expect(safeText("lone\ud800")).toBe("lone\\ud800");
  });

  it("escapes a backslash, so a typed '\\n' never passes for an escaped line break", () => {
    expect(safeText("typed \\n here")).toBe("typed \\\\n here");
    expect(safeText("typed \\n here")).not.toBe(safeText("typed \n here"));
  });

  it("treats null and undefined as empty", () => {
    expect(safeText(null)).toBe("");
    expect(safeText(undefined)).toBe("");
  });
});

describe("safeLines", () => {
  it("keeps the line breaks of a message and makes each line safe", () => {
    expect(safeLines("first\u202e\nsecond\r")).toBe("first\\u202e\nsecond\\r");
  });
});

describe("table", () => {
  it("shows every cell through safeText and keeps one row per line", () => {
    const rendered = table(
      [["req_1", "pending", "mallory\n  approved by carol"]],
      ["ID", "STATE", "REQUESTER"],
    );
    expect(rendered.split("\n")).toHaveLength(2);
    expect(rendered).toContain("mallory\\n  approved by carol");
  });
});
