import { replicaReloadReply, replicasReply } from "../api/replicas.schema.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { ReplicaService } from "./replica.service.js";

export function createReplicaRoutes(deps: {
  replicas: Pick<ReplicaService, "list" | "reloadAll">;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/replicas",
      summary: "The serving processes on this database: version, configuration digest, last heartbeat",
      tag: "system",
      auth: "user",
      reply: replicasReply,
      handler: ({ principal }) => deps.replicas.list(principal),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/replicas/reload",
      summary: "Ask every replica to re-read its configuration file",
      tag: "system",
      auth: "user",
      reply: replicaReloadReply,
      handler: ({ principal }) => deps.replicas.reloadAll(principal),
    }),
  ];
}
