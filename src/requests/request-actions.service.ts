import type { FirebreakConfig } from "../config/schema.js";
import type { Db } from "../db/types.js";
import type { FactorService } from "../factors/factor.service.js";
import { grantIdsByRequest } from "../grants/grant.repo.js";
import type { GrantService } from "../grants/grant.service.js";
import { toGrantView } from "../grants/grant.views.js";
import { suggestedApprovers } from "../policy/visibility.js";
import type { Clock } from "../shared/clock.js";
import type { Principal } from "../users/user.service.js";
import type { RequestRecord } from "./request.repo.js";
import type { RequestService } from "./request.service.js";
import { type RequestView, toRequestView } from "./request.views.js";

/** How far back a presented factor is looked up; the policy's own freshness is then applied. */
const RECENT_FACTOR_MS = 24 * 3_600_000;

/**
 * What the request routes ask, each in one call: the request service's answer shaped as the API's
 * view (approvals, grant, suggested approvers), and approval and activation with the factors the
 * caller presented, looked up here rather than in the route.
 */
export function createRequestActions(deps: {
  db: Db;
  clock: Clock;
  config: () => FirebreakConfig;
  requests: Pick<
    RequestService,
    "create" | "list" | "load" | "approve" | "deny" | "cancel" | "approvalsViews"
  >;
  grants: Pick<GrantService, "activate" | "effects">;
  factors: Pick<FactorService, "presentTotp" | "recent">;
}) {
  /** Views of several requests with a fixed number of queries, however many there are. */
  async function views(records: readonly RequestRecord[]): Promise<RequestView[]> {
    const approvals = await deps.requests.approvalsViews(records);
    const grants = await grantIdsByRequest(
      deps.db,
      records.map((record) => record.id),
    );
    return records.map((record, index) => {
      const { approvals: list, progress } = approvals[index] as (typeof approvals)[number];
      const remaining = progress.steps.filter((s) => s.remaining > 0).map((s) => ({ from: [...s.from] }));
      const suggested = suggestedApprovers(deps.config(), {
        context: { requires: remaining, requester: record.requester },
      });
      return toRequestView(record, list, progress, grants.get(record.id) ?? null, suggested);
    });
  }
  const view = async (record: RequestRecord) => (await views([record]))[0] as RequestView;

  /** The caller's recent factors, after recording a code given with this call first. */
  async function factorsOf(
    principal: Principal,
    totp: string | undefined,
    purpose: "approval" | "activation",
  ) {
    if (totp) await deps.factors.presentTotp(principal, totp, purpose);
    return deps.factors.recent(principal.name, RECENT_FACTOR_MS);
  }

  return {
    async create(...args: Parameters<RequestService["create"]>) {
      return view(await deps.requests.create(...args));
    },
    async list(...args: Parameters<RequestService["list"]>) {
      return views(await deps.requests.list(...args));
    },
    async load(principal: Principal, id: string) {
      return view(await deps.requests.load(principal, id));
    },
    /** Approves with the caller's fresh factor (the service picks a fresh use among the recent ones). */
    async approve(principal: Principal, id: string, comment: string | null, totp?: string) {
      const factors = await factorsOf(principal, totp, "approval");
      const { request } = await deps.requests.approve(principal, id, comment, factors);
      return view(request);
    },
    async deny(principal: Principal, id: string, reason: string) {
      return view(await deps.requests.deny(principal, id, reason));
    },
    async cancel(principal: Principal, id: string) {
      return view(await deps.requests.cancel(principal, id));
    },
    /** Activates with the caller's fresh factor: the grant starts and its view is returned. */
    async activate(principal: Principal, id: string, totp: string | undefined, publicKey: string | null) {
      const factors = await factorsOf(principal, totp, "activation");
      const grant = await deps.grants.activate(principal, id, factors, publicKey);
      return toGrantView(grant, await deps.grants.effects(grant.id), deps.clock.now());
    },
  };
}
export type RequestActions = ReturnType<typeof createRequestActions>;
