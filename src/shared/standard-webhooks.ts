import { createHmac } from "node:crypto";

/**
 * Signs a webhook as the Standard Webhooks specification says: the headers `webhook-id`,
 * `webhook-timestamp` (seconds) and `webhook-signature` = `v1,` + base64(HMAC-SHA256(key,
 * `${id}.${timestamp}.${body}`)), where the key is the base64 part of a `whsec_…` secret (any
 * other secret is used as its UTF-8 bytes).
 */
export function signWebhook(
  secret: string,
  id: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  const key = secret.startsWith("whsec_")
    ? Buffer.from(secret.slice(6), "base64")
    : Buffer.from(secret, "utf8");
  const signature = createHmac("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": `v1,${signature}`,
  };
}
