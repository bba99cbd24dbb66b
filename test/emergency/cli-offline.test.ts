import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { split } from "shamir-secret-sharing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { keyIdOf } from "../../src/audit/checkpoint.js";
import { buildProgram } from "../../src/cli/main.js";
import {
  encryptShare,
  KIT_FORMAT,
  parseJournal,
  SHARE_FORMAT,
  seal,
  signKit,
  verifyJournalEntry,
} from "../../src/emergency/kit-file.js";

// The offline commands, run in-process through the real program with no server, database or
// identity provider anywhere: FIREBREAK_URL points at a closed port, and nothing may call it.
const SECRET = `pw-${randomBytes(12).toString("hex")}`;
let directory: string;
let kitPath: string;
let publicKeyPath: string;
const identityPaths: string[] = [];
const journalKey = generateKeyPairSync("ed25519");

async function run(args: string[]): Promise<{ out: string; code: number | undefined }> {
  const writes: string[] = [];
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    writes.push(String(chunk));
    return true;
  });
  const errors = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  process.exitCode = undefined;
  try {
    const argv = ["node", "firebreak", ...args];
    const program = await buildProgram(argv);
    program.exitOverride();
    await program.parseAsync(argv);
    return { out: writes.join(""), code: 0 };
  } catch (error) {
    return { out: `${writes.join("")}${(error as Error).message}`, code: 1 };
  } finally {
    spy.mockRestore();
    errors.mockRestore();
  }
}

beforeAll(async () => {
  process.env.FIREBREAK_URL = "http://127.0.0.1:1";
  directory = await mkdtemp(join(tmpdir(), "emergency-cli-"));
  const audit = generateKeyPairSync("ed25519");
  publicKeyPath = join(directory, "audit.pub.pem");
  await writeFile(publicKeyPath, audit.publicKey.export({ type: "spki", format: "pem" }).toString());
  const identities = await Promise.all([0, 1, 2].map(() => generateX25519Identity()));
  for (const [index, identity] of identities.entries()) {
    const path = join(directory, `c${index}.agekey`);
    await writeFile(path, `# custodian ${index}\n${identity}\n`);
    identityPaths.push(path);
  }
  const kitId = `kit_${randomBytes(10).toString("hex")}`;
  const key = randomBytes(32);
  const parts = await split(new Uint8Array(key), 3, 2);
  const names = ["erin", "carol", "dave"];
  const shares = await Promise.all(
    names.map(async (custodian, index) => ({
      custodian,
      recipient: await identityToRecipient(identities[index] as string),
      encrypted: await encryptShare(
        {
          format: SHARE_FORMAT,
          kitId,
          custodian,
          share: Buffer.from(parts[index] as Uint8Array).toString("base64"),
        },
        await identityToRecipient(identities[index] as string),
      ),
    })),
  );
  const kit = signKit(
    {
      format: KIT_FORMAT,
      kitId,
      zone: "payments-db",
      resource: "payments-pg",
      resourceType: "postgres",
      role: "admin",
      createdAt: new Date().toISOString(),
      endsAt: new Date(Date.now() + 3_600_000).toISOString(),
      threshold: 2,
      sealed: seal(
        {
          credential: {
            type: "postgres",
            username: "fbkit_emergency_x",
            secret: SECRET,
            detail: { host: "db", port: 5432 },
          },
          journalPrivateKey: journalKey.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        },
        key,
        kitId,
        randomBytes(12),
      ),
      journalKey: journalKey.publicKey.export({ type: "spki", format: "pem" }).toString(),
      shares,
    },
    audit.privateKey,
    keyIdOf(audit.publicKey),
  );
  kitPath = join(directory, "payments-db.kit.json");
  await writeFile(kitPath, JSON.stringify(kit));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("firebreak emergency share|open (offline)", () => {
  it("opens with two shares, journals the opening, and refuses one share or a changed kit", async () => {
    const sharePaths = [join(directory, "s0"), join(directory, "s2")];
    expect(
      (
        await run([
          "emergency",
          "share",
          kitPath,
          "--identity",
          identityPaths[0] as string,
          "--out",
          sharePaths[0] as string,
        ])
      ).code,
    ).toBe(0);
    expect(
      (
        await run([
          "emergency",
          "share",
          kitPath,
          "--identity",
          identityPaths[2] as string,
          "--out",
          sharePaths[1] as string,
        ])
      ).code,
    ).toBe(0);
    const journal = join(directory, "openings.jsonl");
    const base = [
      "emergency",
      "open",
      kitPath,
      "--public-key",
      publicKeyPath,
      "--journal",
      journal,
      "--opener",
      "erin",
      "--reason",
      "Firebreak down",
    ];

    const one = await run([...base, "--share", sharePaths[0] as string]);
    expect(one.code).toBe(1);
    expect(one.out).toContain("opens with 2 of 3");
    expect(one.out).not.toContain(SECRET);

    const opened = await run(["--json", ...base, "--share", ...sharePaths]);
    expect(opened.code).toBe(0);
    expect(JSON.parse(opened.out).secret).toBe(SECRET);
    const { entries } = parseJournal(await readFile(journal, "utf8"));
    expect(entries).toHaveLength(1);
    expect(entries[0]?.custodians).toEqual(["dave", "erin"]);
    const kitPem = journalKey.publicKey.export({ type: "spki", format: "pem" }).toString();
    expect(verifyJournalEntry(entries[0] as never, kitPem)).toBe(true);

    const changed = JSON.parse(await readFile(kitPath, "utf8"));
    changed.role = "superuser";
    const changedPath = join(directory, "changed.kit.json");
    await writeFile(changedPath, JSON.stringify(changed));
    const refused = await run(["emergency", "open", changedPath, ...base.slice(3), "--share", ...sharePaths]);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain("signature does not match");
    expect(refused.out).not.toContain(SECRET);
    expect(parseJournal(await readFile(journal, "utf8")).entries).toHaveLength(1);
  }, 30_000);
});

describe("the offline opener's imports", () => {
  it("reach nothing of the server, its database or the identity provider", async () => {
    const source = await readFile(join(import.meta.dirname, "../../src/emergency/kit-file.ts"), "utf8");
    const specifiers = [...source.matchAll(/from "([^"]+)"/g)].map((match) => match[1]);
    expect(specifiers.sort()).toEqual(
      [
        "../errors.js",
        "../shared/canonical-json.js",
        "age-encryption",
        "node:crypto",
        "shamir-secret-sharing",
        "zod",
      ].sort(),
    );
    expect(source).not.toMatch(/import\(/);
  });
});
