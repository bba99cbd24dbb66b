import { createHash } from "node:crypto";

/**
 * Kubernetes naming rules, as the API server enforces them:
 * - object names are DNS-1123 subdomains: at most 253 characters of lowercase letters, digits,
 *   '-' and '.', starting and ending with a letter or digit (we also keep them to one label, 63
 *   characters, which every policy kind accepts);
 * - label values: at most 63 characters of letters, digits, '-', '_' and '.', starting and ending
 *   with a letter or digit (or empty);
 * - label keys: an optional DNS subdomain prefix and '/', then a name like a label value.
 */

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** The label every exported policy selects zone members by: `firebreak.io/zone: <zone>`. */
export const ZONE_LABEL = "firebreak.io/zone";
export const GRANT_LABEL = "firebreak.io/grant";
export const MANAGED_LABEL = "app.kubernetes.io/managed-by";

export function isLabelKey(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash < 0) return LABEL_NAME.test(key);
  const prefix = key.slice(0, slash);
  return prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix) && LABEL_NAME.test(key.slice(slash + 1));
}

export function isLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE.test(value);
}

/**
 * A valid object name from parts such as `firebreak`, `zone`, `payments_db`: lowercased, every
 * other character made '-', cut to 63. When that changed anything, a short hash of the original
 * keeps two different inputs from landing on the same name (`a_b` and `a-b`).
 */
export function objectName(...parts: string[]): string {
  const original = parts.join("-");
  let name = original
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
  if (name !== original || name.length > 63) {
    const hash = createHash("sha256").update(original).digest("hex").slice(0, 8);
    name = `${name.slice(0, 63 - hash.length - 1).replace(/-+$/, "")}-${hash}`;
  }
  return name || "firebreak";
}
