import { z } from "zod";
import { nameSchema, SINK_TYPES } from "../config/schema.js";
import { assert } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { Principal } from "../users/user.service.js";
import type { Checkpointer, SigningKey } from "./checkpoint.js";
import type { AuditDelivery } from "./delivery.js";

function requireAuditor(principal: Principal, what: string) {
  assert(
    principal.isAdmin || principal.isAuditor,
    "FORBIDDEN",
    `only administrators and auditors can ${what}`,
  );
}

const iso = (time: number | null) => (time === null ? null : new Date(time).toISOString());

const sinkStatusSchema = z.object({
  name: z.string(),
  type: z.enum(SINK_TYPES),
  format: z.string(),
  target: z.string().nullable(),
  state: z.enum(["idle", "delivering", "retrying", "failing", "misconfigured", "starting"]),
  deliveredSeq: z.number(),
  headSeq: z.number(),
  lagEvents: z.number(),
  lagSeconds: z.number(),
  attempts: z.number(),
  nextAttemptAt: z.string().nullable(),
  lastError: z.string().nullable(),
  lastErrorAt: z.string().nullable(),
  lastDeliveredAt: z.string().nullable(),
  deliveredTotal: z.number(),
  errorTotal: z.number(),
  deadLetters: z.object({ dead: z.number(), queued: z.number(), replayed: z.number() }),
  filter: z
    .object({
      types: z.array(z.string()).optional(),
      zones: z.array(z.string()).optional(),
      minSeverity: z.string().optional(),
    })
    .nullable(),
});

const deadLetterSchema = z.object({
  seq: z.number(),
  eventId: z.string(),
  attempts: z.number(),
  lastError: z.string(),
  state: z.enum(["dead", "queued", "replayed"]),
  deadAt: z.string(),
  replayedAt: z.string().nullable(),
});

const sinkParams = z.object({ name: nameSchema });

/** Sink status, dead letters, replay, checkpoints and the checkpoint key: administrators and auditors. */
export function createDeliveryRoutes(deps: {
  delivery: Pick<AuditDelivery, "status" | "deadLetters" | "replay">;
  checkpointer: Checkpointer;
  signingKey: () => SigningKey | null;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/audit/sinks",
      summary: "Each audit sink: where it stands in the chain (lag), its failures and its dead letters",
      tag: "audit",
      auth: "user",
      reply: z.object({ sinks: z.array(sinkStatusSchema) }),
      async handler({ principal }) {
        requireAuditor(principal, "see audit sinks");
        const sinks = await deps.delivery.status();
        return {
          sinks: sinks.map((sink) => ({
            ...sink,
            nextAttemptAt: iso(sink.nextAttemptAt),
            lastErrorAt: iso(sink.lastErrorAt),
            lastDeliveredAt: iso(sink.lastDeliveredAt),
          })),
        };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/audit/sinks/:name/dead-letters",
      summary: "The events an audit sink gave up on, oldest first",
      tag: "audit",
      auth: "user",
      params: sinkParams,
      query: z.object({ state: z.enum(["dead", "queued", "replayed"]).optional() }),
      reply: z.object({ deadLetters: z.array(deadLetterSchema) }),
      async handler({ principal, params, query }) {
        requireAuditor(principal, "see audit sinks");
        const letters = await deps.delivery.deadLetters(params.name, query.state);
        return {
          deadLetters: letters.map((letter) => ({
            seq: letter.seq,
            eventId: letter.eventId,
            attempts: letter.attempts,
            lastError: letter.lastError,
            state: letter.state,
            deadAt: new Date(letter.deadAt).toISOString(),
            replayedAt: iso(letter.replayedAt),
          })),
        };
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/audit/sinks/:name/replay",
      summary:
        "Deliver an audit sink's dead letters again, and with fromSeq everything from that sequence number on",
      tag: "audit",
      auth: "user",
      params: sinkParams,
      body: z.strictObject({ fromSeq: z.number().int().min(1).optional() }).optional(),
      reply: z.object({ sink: z.string(), queued: z.number(), rewoundTo: z.number().nullable() }),
      async handler({ principal, params, body }) {
        requireAuditor(principal, "replay audit sinks");
        const result = await deps.delivery.replay(params.name, principal.name, { fromSeq: body?.fromSeq });
        return { sink: params.name, ...result };
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/audit/checkpoints",
      summary:
        "Sign the chain's head now (as before an export); nothing is written when the head is already signed",
      tag: "audit",
      auth: "user",
      reply: z.object({
        signed: z.boolean(),
        seq: z.number().nullable(),
        hash: z.string().nullable(),
        keyId: z.string().nullable(),
      }),
      async handler({ principal }) {
        requireAuditor(principal, "write checkpoints");
        const key = deps.signingKey();
        assert(
          key !== null,
          "CONFLICT",
          "no audit.signingKey is configured, so checkpoints cannot be signed",
        );
        const head = await deps.checkpointer.write("requested");
        return { signed: head !== null, seq: head?.seq ?? null, hash: head?.hash ?? null, keyId: key.keyId };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/audit/checkpoint-key",
      summary: "The public key that verifies checkpoints (PEM), for `firebreak audit verify --public-key`",
      tag: "audit",
      auth: "user",
      reply: z.object({ keyId: z.string(), algorithm: z.literal("Ed25519"), publicKey: z.string() }),
      async handler({ principal }) {
        requireAuditor(principal, "read the checkpoint key");
        const key = deps.signingKey();
        assert(key !== null, "NOT_FOUND", "no audit.signingKey is configured");
        return {
          keyId: key.keyId,
          algorithm: "Ed25519" as const,
          publicKey: key.publicKey.export({ type: "spki", format: "pem" }).toString(),
        };
      },
    }),
  ];
}
