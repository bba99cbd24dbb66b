import { z } from "zod";
import type { AgentReport } from "../api/enforcement.schema.js";
import { FirebreakError } from "../errors.js";
import { networkStateSchema } from "../segmentation/network-state.js";
import type { StateSource } from "./agent.js";

/** The desired-state endpoint's answer, validated on the agent's side too. */
export const desiredStateReplySchema = z.object({
  changed: z.boolean(),
  digest: z.string(),
  serverTime: z.number().int(),
  state: networkStateSchema.nullable(),
});

/**
 * The desired state over HTTP: a long-poll on `GET /v1/enforcement/desired-state` that names the
 * digest the agent already has (so a reconnect resumes where it left off: the server answers at
 * once with whatever changed meanwhile), and reports as `POST /v1/enforcement/reports`.
 */
export function createHttpStateSource(options: {
  url: string;
  token: string;
  agent: string;
  enforcer: string;
  graceMs: number;
}): StateSource {
  const base = options.url.replace(/\/+$/, "");
  const headers = { authorization: `Bearer ${options.token}`, accept: "application/json" };

  async function failure(response: Response, what: string): Promise<FirebreakError> {
    const body = (await response.json().catch(() => null)) as {
      error?: { code?: string; message?: string };
    } | null;
    const message = body?.error?.message ?? `HTTP ${response.status}`;
    return new FirebreakError(
      "UNAVAILABLE",
      `${what}: ${message}${body?.error?.code ? ` [${body.error.code}]` : ""}`,
    );
  }

  return {
    async poll(after, waitSeconds, signal) {
      const query = new URLSearchParams({
        agent: options.agent,
        enforcer: options.enforcer,
        grace: String(options.graceMs),
        wait: String(waitSeconds),
      });
      if (after) query.set("after", after);
      const response = await fetch(`${base}/v1/enforcement/desired-state?${query}`, { headers, signal });
      if (!response.ok) throw await failure(response, "the server refused the desired state");
      const reply = desiredStateReplySchema.parse(await response.json());
      return { serverTime: reply.serverTime, state: reply.changed ? reply.state : null };
    },
    async report(report: AgentReport) {
      const response = await fetch(`${base}/v1/enforcement/reports`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify(report),
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok) throw await failure(response, "the server refused the report");
    },
  };
}
