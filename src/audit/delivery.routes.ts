import {
  checkpointKeyReply,
  checkpointReply,
  deadLettersQuery,
  deadLettersReply,
  replayBody,
  replayReply,
  sinkParams,
  sinksReply,
} from "../api/sinks.schema.js";
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
      reply: sinksReply,
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
      query: deadLettersQuery,
      reply: deadLettersReply,
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
      body: replayBody,
      reply: replayReply,
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
      reply: checkpointReply,
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
      reply: checkpointKeyReply,
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
