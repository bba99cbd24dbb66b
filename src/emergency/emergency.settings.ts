import { z } from "zod";
import { durationSchema, nameSchema, userNameSchema } from "../config/primitives.js";

/** An age X25519 recipient (`age1…`, Bech32): what a custodian enrols to receive shares. */
export const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** One custodian: a user of the directory and the public key their share is encrypted to. */
export const custodianSchema = z.strictObject({
  user: userNameSchema.describe("The custodian's user name"),
  recipient: z
    .string()
    .regex(AGE_RECIPIENT, "an age X25519 recipient (age1…, from 'age-keygen -y')")
    .describe("The custodian's enrolled age X25519 public key; their share is encrypted to it"),
});

/**
 * `emergency.<zone>`: a sealed emergency kit for the zone (src/emergency/NOTES.md). The kit's
 * credential is issued on `resource` for `role`, lives `lifetime`, and is opened by any
 * `threshold` of the custodians.
 */
export const emergencyKitSettings = z.strictObject({
  resource: nameSchema.describe("The resource (in this zone) the kit's credential is issued on"),
  role: nameSchema.describe("The resource's role the kit's credential has"),
  custodians: z
    .array(custodianSchema)
    .min(2)
    .max(32)
    .describe("Who holds a share, each with the age recipient their share is encrypted to"),
  threshold: z.number().int().min(2).max(32).describe("How many custodians' shares open the kit (k of n)"),
  lifetime: durationSchema
    .refine((ms) => ms >= 10 * 60_000 && ms <= 30 * 86_400_000, "a duration from 10m to 30d")
    .describe("How long one kit's credential lives on the target"),
  rotateBefore: durationSchema
    .optional()
    .describe("How long before a kit's end the next kit is made (default: a quarter of the lifetime)"),
  write: z
    .array(z.string().regex(/^file:\/.+/, "file:/absolute/directory/"))
    .min(1)
    .describe("Where kits are written outside the control plane: 'file:/directory/'"),
});
export type EmergencyKitSettings = z.infer<typeof emergencyKitSettings>;

export const emergencySettingsSchema = z
  .record(nameSchema, emergencyKitSettings)
  .describe("Sealed emergency kits, by zone: usable when Firebreak itself is down");
