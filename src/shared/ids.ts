import { randomBytes } from "node:crypto";

/**
 * Identifiers such as `req_mi3k2a9f4c1b8e0d7a6f`: a prefix naming the kind, a time part so ids
 * sort roughly by creation, and 64 random bits so they cannot be guessed.
 */
export function newId(
  prefix: "req" | "grt" | "apv" | "eff" | "inc" | "evt" | "tok" | "ses" | "drl",
  now = Date.now(),
): string {
  return `${prefix}_${now.toString(36)}${randomBytes(8).toString("hex")}`;
}

export { ID_PATTERN } from "./id-pattern.js";
