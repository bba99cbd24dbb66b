import { appendFile, readFile, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import type { CommandContext } from "../context.js";
import { safeText } from "../format.js";

/**
 * `emergency kit|share|open|report`. `share` and `open` run with Firebreak, its database and the
 * identity provider down: they read files only, and load the offline kit module (which imports
 * nothing of the server) through import().
 */
export function registerEmergencyCommands(program: Command, context: CommandContext) {
  const emergency = program
    .command("emergency")
    .description("sealed emergency kits: usable when Firebreak itself is down");

  emergency
    .command("kit")
    .argument("<zone>", "the zone whose current kit to fetch")
    .option("--out <file>", "write the kit here instead of printing it")
    .description("fetch the zone's current sealed kit (administrators)")
    .action(async (zone: string, options: { out?: string }) => {
      const { emergencyKitReply } = await import("../../api/emergency.schema.js");
      const { kit } = await (await context.client()).post(
        `/v1/emergency/${encodeURIComponent(zone)}/kit`,
        {},
        emergencyKitReply,
      );
      if (options.out) {
        await writeFile(options.out, kit);
        context.emit(
          { written: options.out },
          () => `kit of ${safeText(zone)} written to ${safeText(options.out ?? "")}`,
        );
      } else process.stdout.write(kit);
    });

  emergency
    .command("share")
    .argument("<kit>", "the kit file")
    .requiredOption("--identity <file>", "your age identity file (AGE-SECRET-KEY-1…)")
    .option("--out <file>", "write your decrypted share here (mode 0600) instead of printing it")
    .description("decrypt your share of a kit with your own key (offline)")
    .action(async (kitPath: string, options: { identity: string; out?: string }) => {
      const offline = await import("../../emergency/kit-file.js");
      const kit = offline.parseKit(await readText(kitPath, "kit", context));
      const identity = (await readText(options.identity, "identity", context))
        .split("\n")
        .find((line) => line.startsWith("AGE-SECRET-KEY-1"));
      if (!identity)
        throw context.fail(
          `${options.identity} holds no age secret key (AGE-SECRET-KEY-1…)`,
          "SHARE_INVALID",
        );
      const share = await offline.decryptShare(kit, identity);
      const text = `${JSON.stringify(share)}\n`;
      if (options.out) {
        await writeFile(options.out, text, { mode: 0o600 });
        context.emit(
          { kitId: kit.kitId, custodian: share.custodian, written: options.out },
          () =>
            `share of ${share.custodian} for kit ${kit.kitId} written to ${safeText(options.out ?? "")}; hand it only to the opener`,
        );
      } else process.stdout.write(text);
    });

  emergency
    .command("open")
    .argument("<kit>", "the kit file")
    .requiredOption("--share <file...>", "decrypted shares (k of them)")
    .requiredOption("--public-key <file>", "the pinned audit public key (firebreak audit public-key), PEM")
    .requiredOption("--journal <file>", "the local journal the opening is appended to")
    .requiredOption("--opener <name>", "who is opening the kit")
    .requiredOption("--reason <text>", "why")
    .option("--allow-expired", "open a kit past its end (the target refuses its credential anyway)")
    .description(
      "combine k shares, check the kit's signature, print the credential, journal the opening (offline)",
    )
    .action(
      async (
        kitPath: string,
        options: {
          share: string[];
          publicKey: string;
          journal: string;
          opener: string;
          reason: string;
          allowExpired?: boolean;
        },
      ) => {
        const offline = await import("../../emergency/kit-file.js");
        const kit = offline.parseKit(await readText(kitPath, "kit", context));
        offline.verifyKit(kit, await readText(options.publicKey, "public key", context));
        if (Date.parse(kit.endsAt) <= Date.now() && !options.allowExpired)
          throw context.fail(
            `kit ${kit.kitId} ended at ${kit.endsAt}: its credential no longer works on the target; fetch the current kit`,
            "KIT_EXPIRED",
          );
        const shares = [];
        for (const path of options.share)
          shares.push(offline.parseShare(await readText(path, "share", context), path));
        const payload = await offline.unseal(kit, shares);
        const previous = await readFile(options.journal, "utf8").then(
          (text) =>
            text
              .split("\n")
              .filter((line) => line.trim() !== "")
              .at(-1) ?? null,
          () => null,
        );
        const entry = offline.journalEntry(kit, payload, {
          opener: options.opener,
          reason: options.reason,
          custodians: shares.map((s) => s.custodian),
          openedAt: new Date(),
          previousLine: previous,
        });
        await appendFile(options.journal, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
        const { credential } = payload;
        context.emit(
          {
            kitId: kit.kitId,
            zone: kit.zone,
            resource: kit.resource,
            role: kit.role,
            endsAt: kit.endsAt,
            username: credential.username,
            secret: credential.secret,
            detail: credential.detail,
            connect: offline.connectHint(kit, payload),
            journal: options.journal,
          },
          () =>
            [
              `kit ${kit.kitId}: ${kit.zone} / ${kit.resource} as ${kit.role}, valid until ${kit.endsAt}`,
              `user:     ${credential.username}`,
              `password: ${credential.secret}`,
              ...Object.entries(credential.detail)
                .filter(([key]) => ["host", "port", "database"].includes(key))
                .map(([key, value]) => `${`${key}:`.padEnd(9)} ${safeText(String(value))}`),
              `connect:  ${offline.connectHint(kit, payload)}`,
              `the opening is recorded in ${options.journal}; run 'firebreak emergency report ${options.journal}' when Firebreak is back`,
            ].join("\n"),
        );
      },
    );

  emergency
    .command("report")
    .argument("<journal>", "a journal written by 'emergency open'")
    .description("import recorded openings (grants due for review), rotate the kits, look for unrecorded use")
    .action(async (journalPath: string) => {
      const { emergencyReportReply } = await import("../../api/emergency.schema.js");
      const journal = await readText(journalPath, "journal", context);
      const result = await (await context.client()).post(
        "/v1/emergency/report",
        { journal },
        emergencyReportReply,
      );
      context.emit(
        result,
        () =>
          [
            ...result.imported.map(
              (i) =>
                `imported: kit ${i.kitId} opened by ${safeText(i.opener)} → grant ${i.grantId} (review due)`,
            ),
            ...result.refused.map((r) => `refused: kit ${safeText(r.kitId)}: ${safeText(r.reason)}`),
            ...(result.unreadable > 0 ? [`${result.unreadable} unreadable line(s) ignored`] : []),
            ...result.rotations.flatMap((r) => [
              `rotated: ${r.zone} → kit ${r.kitId}`,
              ...r.findings.map(
                (f) =>
                  `  ${f.externalId}: ${f.liveSessions} live session(s), ${f.connections === null ? "logins not counted by the target" : `${f.connections} login(s)`}`,
              ),
            ]),
          ].join("\n") || "nothing to import",
      );
    });
}

async function readText(path: string, what: string, context: CommandContext): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch {
    throw context.fail(`cannot read the ${what} file ${path}`, "BAD_REQUEST");
  }
}
