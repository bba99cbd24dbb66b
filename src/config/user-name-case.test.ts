import { describe, expect, it } from "vitest";
import { loadConfigText } from "./load.js";

const BASE = `version: 1
directory:
  users:
    alice: { groups: [sre] }
    carol: { groups: [leads] }
zones:
  vault: {}
resources:
  vault-db:
    zone: vault
    type: log
    roles: { admin: { grants: [vault_owner] } }
`;

function errorsOf(text: string) {
  const result = loadConfigText(text, "firebreak.yaml");
  return result.ok ? [] : result.errors.map((e) => ({ line: e.line, path: e.path, message: e.message }));
}

describe("user names that differ only in case", () => {
  it("refuses two directory users spelled alike, at the second one's key", () => {
    const errors = errorsOf(
      BASE.replace("    carol: { groups: [leads] }\n", "    Alice: { groups: [leads] }\n"),
    );
    expect(errors).toEqual([
      {
        line: 5,
        path: "directory.users.Alice",
        message:
          "user 'Alice' differs only in case from user 'alice' (line 4); user names are the same whatever their case",
      },
    ]);
  });

  it("refuses a reference that spells a directory user another way, wherever it is", () => {
    const errors = errorsOf(`${BASE}administrators: [user:ALICE]
standing:
  - { user: Carol, zone: vault, role: admin }
breakGlass:
  - name: vault-emergency
    zone: vault
    roles: [admin]
    eligible: [user:alice]
    duration: { default: 15m, max: 1h }
    approvals:
      - { from: [user:CAROL], count: 1 }
`);
    expect(errors.map((e) => [e.line, e.path, e.message])).toEqual([
      [
        13,
        "administrators[0]",
        "user 'ALICE' differs only in case from 'alice' (line 4); write it the same way everywhere",
      ],
      [
        15,
        "standing[0].user",
        "user 'Carol' differs only in case from 'carol' (line 5); write it the same way everywhere",
      ],
      [
        23,
        "breakGlass[0].approvals[0].from[0]",
        "user 'CAROL' differs only in case from 'carol' (line 5); write it the same way everywhere",
      ],
    ]);
  });

  it("refuses two spellings of a user the directory does not list (one from the identity provider)", () => {
    const errors = errorsOf(`${BASE}administrators: [user:Olivia]
auditors: [user:olivia]
`);
    expect(errors).toEqual([
      {
        line: 14,
        path: "auditors[0]",
        message:
          "user 'olivia' differs only in case from 'Olivia' (line 13); write it the same way everywhere",
      },
    ]);
  });

  it("accepts one spelling used everywhere, mixed case included", () => {
    const result = loadConfigText(
      `${BASE.replace("alice:", "Alice.Smith:")}administrators: [user:Alice.Smith]\nauditors: [user:Alice.Smith]\n`,
    );
    expect(result.ok ? [] : result.errors).toEqual([]);
  });
});
