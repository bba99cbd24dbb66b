import { z } from "zod";
import { secretRefSchema } from "../../config/primitives.js";

/** TLS settings of a sink that connects out; verification is never off, so there is no key to turn it off. */
export const sinkTlsSettings = z.strictObject({
  ca: secretRefSchema.optional().describe("PEM certificate(s) to trust instead of the system's"),
  cert: secretRefSchema.optional().describe("PEM client certificate, for mutual TLS"),
  key: secretRefSchema.optional().describe("PEM client key, for mutual TLS"),
  serverName: z.string().min(1).max(253).optional().describe("Name expected in the server's certificate"),
});

/** The machine name a receiver shows for events (default this machine's name). */
export const sinkHostnameSetting = z
  .string()
  .regex(/^[!-~]{1,255}$/, "1-255 printable ASCII characters")
  .optional();

/** A sink's `url`: a secret reference, or a literal that `literal` accepts. */
export function sinkUrlSetting(literal: (url: string) => boolean, literalMessage: string) {
  return z
    .union([secretRefSchema, z.string().min(1).max(2000)])
    .refine((url) => /^(env:|file:\/)/.test(url) || literal(url), literalMessage);
}

/** An http:// or https:// URL, for sinks that POST. */
export const isHttpUrl = (url: string) => /^https?:\/\/[^\s]+$/.test(url);
