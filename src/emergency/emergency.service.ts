import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { split } from "shamir-secret-sharing";
import type { SigningKey } from "../audit/checkpoint.js";
import type { FirebreakConfig } from "../config/schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import { insertGrant } from "../grants/grant.repo.js";
import type { ConnectorRegistry } from "../plugins/registry.js";
import { insertRequest } from "../requests/request.repo.js";
import type { Clock } from "../shared/clock.js";
import { newId } from "../shared/ids.js";
import { closeKit, findKit, insertKit, type KitRecord, liveKits, recordOpening } from "./emergency.repo.js";
import type { EmergencyKitSettings } from "./emergency.settings.js";
import {
  encryptShare,
  KIT_FORMAT,
  type KitFile,
  parseJournal,
  SHARE_FORMAT,
  seal,
  signKit,
  type UnsignedKit,
  verifyJournalEntry,
} from "./kit-file.js";

/** Kit credentials are named apart from grants' (`fb_`), so the grant reconciler never reaps them. */
export const KIT_NAME_PREFIX = "fbkit_";
/** The user part of a kit credential's name on the target. */
const KIT_USER = "emergency";
const ACTOR = "system:emergency";
/** How long the review of an imported opening may wait. */
const OPENING_REVIEW_MS = 72 * 3_600_000;

/** A kit id: `kit_` + time + 64 random bits, and the grant-shaped id the connectors name the credential from. */
function newKitId(now: number): { kitId: string; issueId: string } {
  const suffix = `${now.toString(36)}${randomBytes(8).toString("hex")}`;
  return { kitId: `kit_${suffix}`, issueId: `grt_${suffix}` };
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(temporary, text, { mode: 0o644 });
  await rename(temporary, path);
}

export interface UsageFinding {
  kitId: string;
  zone: string;
  externalId: string;
  liveSessions: number;
  connections: number | null;
}

/**
 * Sealed emergency kits (issue 17, src/emergency/NOTES.md): makes a zone's kit (a credential the
 * target itself ends, sealed under a fresh key split k of n among custodians, signed with the
 * audit key, written outside the control plane), rotates kits before their end and after
 * downtime, and imports recorded openings as break-glass grants due for review.
 */
export function createEmergencyService(deps: {
  db: Db;
  inTransaction: InTransaction;
  clock: Clock;
  config: () => FirebreakConfig;
  connectors: ConnectorRegistry;
  signingKey: () => SigningKey | null;
}) {
  function settingsOf(zone: string): EmergencyKitSettings {
    const settings = deps.config().emergency?.[zone];
    if (!settings) throw new FirebreakError("NOT_FOUND", `zone '${zone}' has no emergency kit configured`);
    return settings;
  }

  function resourceOf(settings: EmergencyKitSettings) {
    const resource = deps.config().resources?.[settings.resource];
    if (!resource) throw new FirebreakError("CONFIG_INVALID", `unknown resource '${settings.resource}'`);
    return { ...resource, namePrefix: KIT_NAME_PREFIX } as typeof resource;
  }

  /** Provisions, seals, signs, records (with `emergency.kit.issued`) and writes one new kit. */
  async function makeKit(zone: string, actor: string, reason: string): Promise<KitRecord> {
    const settings = settingsOf(zone);
    const key = deps.signingKey();
    if (!key) throw new FirebreakError("CONFIG_INVALID", "emergency kits need audit.signingKey to be signed");
    const resource = resourceOf(settings);
    const connector = deps.connectors[resource.type];
    const now = deps.clock.now();
    const endsAt = now + settings.lifetime;
    const { kitId, issueId } = newKitId(now);
    if (resource.type !== "postgres" && resource.type !== "mariadb")
      throw new FirebreakError(
        "CONFIG_INVALID",
        `emergency kits are made for PostgreSQL and MariaDB resources so far, not ${resource.type} ('${settings.resource}')`,
      );
    const issued = await connector.issue({
      grantId: issueId,
      user: KIT_USER,
      zone,
      resourceName: settings.resource,
      resource: resource as never,
      role: settings.role,
      startsAt: now,
      endsAt,
      sourceZone: null,
      sourceCidrs: [],
      clientAddress: null,
      publicKey: null,
    });
    try {
      const journal = generateKeyPairSync("ed25519");
      const fileKey = randomBytes(32);
      const secret = issued.secret ?? "";
      const sealed = seal(
        {
          credential: {
            type: resource.type,
            username: String(issued.detail.username ?? issued.externalId),
            secret,
            detail: issued.detail,
          },
          journalPrivateKey: journal.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        },
        fileKey,
        kitId,
        randomBytes(12),
      );
      const parts = await split(new Uint8Array(fileKey), settings.custodians.length, settings.threshold);
      fileKey.fill(0);
      const shares = await Promise.all(
        settings.custodians.map(async (custodian, index) => ({
          custodian: custodian.user,
          recipient: custodian.recipient,
          encrypted: await encryptShare(
            {
              format: SHARE_FORMAT,
              kitId,
              custodian: custodian.user,
              share: Buffer.from(parts[index] as Uint8Array).toString("base64"),
            },
            custodian.recipient,
          ),
        })),
      );
      const unsigned: UnsignedKit = {
        format: KIT_FORMAT,
        kitId,
        zone,
        resource: settings.resource,
        resourceType: resource.type,
        role: settings.role,
        createdAt: new Date(now).toISOString(),
        endsAt: new Date(endsAt).toISOString(),
        threshold: settings.threshold,
        sealed,
        journalKey: journal.publicKey.export({ type: "spki", format: "pem" }).toString(),
        shares,
      };
      const kit: KitFile = signKit(unsigned, key.privateKey, key.keyId);
      const kitJson = `${JSON.stringify(kit, null, 2)}\n`;
      const record: KitRecord = {
        id: kitId,
        zone,
        resource: settings.resource,
        role: settings.role,
        externalId: issued.externalId,
        detail: issued.detail,
        journalKey: kit.journalKey,
        kitJson,
        state: "live",
        createdAt: now,
        endsAt,
        closedAt: null,
        closeReason: null,
      };
      await deps.inTransaction(async (unit) => {
        await insertKit(unit.tx, record);
        await unit.audit({
          type: "emergency.kit.issued",
          actor,
          zone,
          resource: settings.resource,
          subject: kitId,
          context: {
            reason,
            role: settings.role,
            externalId: issued.externalId,
            endsAt: new Date(endsAt).toISOString(),
            threshold: settings.threshold,
            custodians: settings.custodians.map((c) => c.user),
            keyId: key.keyId,
          },
        });
      });
      await writeKit(settings, kit, kitJson);
      return record;
    } catch (error) {
      // A kit that was not recorded must not leave a live credential behind.
      await connector
        .revoke({
          grantId: issueId,
          user: KIT_USER,
          resourceName: settings.resource,
          resource: resource as never,
          externalId: issued.externalId,
          detail: issued.detail,
        })
        .catch(() => {});
      throw error;
    }
  }

  async function writeKit(settings: EmergencyKitSettings, kit: KitFile, text: string): Promise<void> {
    for (const place of settings.write) {
      const directory = place.slice("file:".length);
      await mkdir(directory, { recursive: true });
      await writeAtomically(join(directory, `${kit.kitId}.kit.json`), text);
      await writeAtomically(join(directory, `${kit.zone}.kit.json`), text);
    }
  }

  /** What the target can tell about a kit credential's use, before it is removed. */
  async function usageOf(kit: KitRecord): Promise<UsageFinding | null> {
    const settings = deps.config().emergency?.[kit.zone];
    const resource = deps.config().resources?.[kit.resource];
    if (!settings || !resource) return null;
    const connector = deps.connectors[resource.type];
    if (!connector.usage) return null;
    const usage = await connector.usage(
      kit.resource,
      { ...resource, namePrefix: KIT_NAME_PREFIX } as never,
      kit.externalId,
    );
    return { kitId: kit.id, zone: kit.zone, externalId: kit.externalId, ...usage };
  }

  /**
   * Removes a kit's credential from the target (cutting its sessions, as revocation does) and
   * closes the kit with `emergency.kit.rotated`; with `findings`, raises `alert.raised` for use
   * the target saw and no journal recorded.
   */
  async function retire(
    kit: KitRecord,
    reason: string,
    recordedOpenings: number,
  ): Promise<UsageFinding | null> {
    const resource = deps.config().resources?.[kit.resource];
    let finding: UsageFinding | null = null;
    if (resource) {
      finding = await usageOf(kit).catch(() => null);
      const connector = deps.connectors[resource.type];
      const context = {
        grantId: kit.id.replace(/^kit_/, "grt_"),
        user: KIT_USER,
        resourceName: kit.resource,
        resource: { ...resource, namePrefix: KIT_NAME_PREFIX } as never,
        externalId: kit.externalId,
        detail: kit.detail,
      };
      await connector.revoke(context);
      if (!(await connector.verifyRevoked(context)))
        throw new FirebreakError(
          "CONNECTOR_FAILED",
          `the credential of kit ${kit.id} is still on ${kit.resource}`,
        );
    }
    const used = finding !== null && (finding.liveSessions > 0 || (finding.connections ?? 0) > 0);
    await deps.inTransaction(async (unit) => {
      if (!(await closeKit(unit.tx, kit.id, unit.now, reason))) return;
      await unit.audit({
        type: "emergency.kit.rotated",
        actor: ACTOR,
        zone: kit.zone,
        resource: kit.resource,
        subject: kit.id,
        context: {
          reason,
          externalId: kit.externalId,
          credentialRemoved: true,
          liveSessions: finding?.liveSessions ?? null,
          connections: finding?.connections ?? null,
        },
      });
      if (used && recordedOpenings === 0)
        await unit.audit({
          type: "alert.raised",
          actor: ACTOR,
          zone: kit.zone,
          resource: kit.resource,
          subject: kit.id,
          context: {
            alert: "emergency-kit-unrecorded-use",
            externalId: kit.externalId,
            liveSessions: finding?.liveSessions ?? 0,
            connections: finding?.connections,
            message: `the target saw the emergency kit credential of ${kit.zone} used, and no journal recorded an opening`,
          },
        });
    });
    return finding;
  }

  /** Makes the next kit of a zone, then retires the previous ones (so a kit always exists). */
  async function rotateZone(zone: string, reason: string, recordedOpenings = 0) {
    const previous = await liveKits(deps.db, zone);
    const next = await makeKit(zone, ACTOR, reason);
    const findings: UsageFinding[] = [];
    for (const kit of previous) {
      const finding = await retire(kit, reason, recordedOpenings);
      if (finding) findings.push(finding);
    }
    return { kit: next, retired: previous.map((k) => k.id), findings };
  }

  return {
    makeKit,
    rotateZone,

    /** The current kit file of a zone (sealed: safe to hand out), making one when none is live. */
    async currentKit(zone: string, actor: string): Promise<string> {
      settingsOf(zone);
      const [live] = await liveKits(deps.db, zone);
      return (live ?? (await makeKit(zone, actor, "requested"))).kitJson;
    },

    /**
     * Every zone whose kit is due: missing, or within `rotateBefore` of its end. Due work is run by
     * the caller's timer; two replicas may both see a kit due, and closeKit's compare-and-set keeps
     * its rotation event single (the loser's new kit stays live as well and is retired next time).
     */
    async rotateDue(): Promise<string[]> {
      const rotated: string[] = [];
      for (const [zone, settings] of Object.entries(deps.config().emergency ?? {})) {
        const [live] = await liveKits(deps.db, zone);
        const before = settings.rotateBefore ?? Math.floor(settings.lifetime / 4);
        if (live && live.endsAt - before > deps.clock.now()) continue;
        await rotateZone(zone, live ? "due before the kit's end" : "no live kit");
        rotated.push(zone);
      }
      return rotated;
    },

    /** After downtime every kit may have been opened: rotate them all and look for use. */
    async afterDowntime(): Promise<{ zone: string; findings: UsageFinding[] }[]> {
      const results: { zone: string; findings: UsageFinding[] }[] = [];
      for (const zone of Object.keys(deps.config().emergency ?? {})) {
        const { findings } = await rotateZone(zone, "Firebreak was down: the kit may have been opened");
        results.push({ zone, findings });
      }
      return results;
    },

    /**
     * Imports a journal of recorded openings: each entry checked against its kit's journal key,
     * imported once as an expired break-glass grant with a review due and `alert.raised`; then
     * the kits concerned are rotated and the targets asked about unrecorded use.
     */
    async importJournal(text: string, actor: string) {
      const { entries, unreadable } = parseJournal(text);
      const imported: { kitId: string; opener: string; grantId: string }[] = [];
      const refused: { kitId: string; reason: string }[] = [];
      const zones = new Map<string, number>();
      for (const entry of entries) {
        const kit = await findKit(deps.db, entry.kitId);
        if (!kit) {
          refused.push({ kitId: entry.kitId, reason: "no such kit was made by this Firebreak" });
          continue;
        }
        if (!verifyJournalEntry(entry, kit.journalKey) || entry.zone !== kit.zone) {
          refused.push({
            kitId: entry.kitId,
            reason: "the entry's signature does not match the kit's journal key",
          });
          continue;
        }
        const openedAt = Date.parse(entry.openedAt);
        const grantId = newId("grt", deps.clock.now());
        const requestId = newId("req", deps.clock.now());
        const done = await deps.inTransaction(async (unit) => {
          const fresh = await recordOpening(unit.tx, {
            kitId: kit.id,
            signature: entry.signature,
            opener: entry.opener,
            openedAt,
            grantId,
            now: unit.now,
          });
          if (!fresh) return false;
          const endsAt = Math.min(kit.endsAt, unit.now);
          await insertRequest(unit.tx, {
            id: requestId,
            requester: entry.opener,
            zone: kit.zone,
            resource: kit.resource,
            role: kit.role,
            policy: null,
            durationMs: Math.max(0, endsAt - openedAt),
            reason: `emergency kit ${kit.id} opened offline: ${entry.reason}`.slice(0, 2000),
            ticket: null,
            state: "expired",
            sourceZone: null,
            clientAddress: null,
            approvalSteps: [],
            factors: { kinds: [], freshnessMs: 0 },
            review: { withinMs: OPENING_REVIEW_MS, blockWhenOverdue: false },
            signals: { emergencyKit: kit.id, custodians: entry.custodians },
            autoApproved: false,
            createdAt: openedAt,
            updatedAt: unit.now,
            lapsesAt: null,
            closedReason: "emergency kit rotated",
          });
          await insertGrant(unit.tx, {
            id: grantId,
            requestId,
            user: entry.opener,
            zone: kit.zone,
            resource: kit.resource,
            role: kit.role,
            policy: null,
            sourceZone: null,
            clientAddress: null,
            state: "expired",
            startsAt: openedAt,
            endsAt,
            closedAt: unit.now,
            closeReason: "emergency kit rotated",
            closedBy: ACTOR,
            factorKind: null,
            factorAt: null,
            // No effects of its own: the kit's rotation removes the credential (emergency.kit.rotated).
            revocationStatus: "not-needed",
            revocationAttempts: 0,
            revocationNextAt: null,
            reviewState: "due",
            reviewDueAt: unit.now + OPENING_REVIEW_MS,
            reviewBlock: false,
            reviewer: null,
            reviewNotes: null,
            reviewedAt: null,
            reviewAlertedAt: null,
          });
          const context = {
            kitId: kit.id,
            opener: entry.opener,
            custodians: entry.custodians,
            openedAt: entry.openedAt,
            reason: entry.reason,
          };
          await unit.audit({
            type: "emergency.kit.opened",
            actor,
            zone: kit.zone,
            resource: kit.resource,
            subject: grantId,
            context,
          });
          await unit.audit({
            type: "alert.raised",
            actor: ACTOR,
            zone: kit.zone,
            resource: kit.resource,
            subject: grantId,
            context: { alert: "emergency-kit-opened", ...context, reviewDue: true },
          });
          return true;
        });
        if (done) {
          imported.push({ kitId: kit.id, opener: entry.opener, grantId });
          zones.set(kit.zone, (zones.get(kit.zone) ?? 0) + 1);
        }
      }
      const rotations: { zone: string; kitId: string; findings: UsageFinding[] }[] = [];
      for (const zone of new Set(
        [...entries.map((e) => e.zone)].filter((z) => deps.config().emergency?.[z]),
      )) {
        const { kit, findings } = await rotateZone(
          zone,
          "a recorded opening was reported",
          zones.get(zone) ?? 0,
        );
        rotations.push({ zone, kitId: kit.id, findings });
      }
      return { imported, refused, unreadable, rotations };
    },
  };
}
export type EmergencyService = ReturnType<typeof createEmergencyService>;
