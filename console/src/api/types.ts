/**
 * The replies of the Firebreak API the console reads. They are the server's own reply schemas
 * (src/api/*.schema.ts), imported as types only: nothing of zod reaches the bundle, and a change
 * to a reply is a type error here rather than a drift found later.
 */

import type { AuditEventView, VerifyReply } from "../../../src/api/audit.schema.js";
import type { Decision, Explanation, PolicyRequirements, Reason } from "../../../src/api/decisions.schema.js";
import type { DrillStatusView } from "../../../src/api/drills.schema.js";
import type { CredentialView, GrantView } from "../../../src/api/grants.schema.js";
import type { RequestView } from "../../../src/api/requests.schema.js";
import type {
  BlastRadius as BlastRadiusChanges,
  Reachability,
} from "../../../src/api/segmentation.schema.js";
import type { SessionView, TranscriptRecordView } from "../../../src/api/sessions.schema.js";
import type { PrincipalView } from "../../../src/api/users.schema.js";
import type { ZoneView } from "../../../src/api/zones.schema.js";

export type {
  BlastRadiusChanges,
  CredentialView,
  Decision,
  DrillStatusView,
  Explanation,
  GrantView,
  PolicyRequirements,
  Reachability,
  Reason,
  RequestView,
  SessionView,
  TranscriptRecordView,
  ZoneView,
};

export type Principal = PrincipalView;

/** One approval step of a request, with who has approved and how many are still needed. */
export type ApprovalStep = RequestView["requires"]["approvals"][number];

export type AuditEvent = AuditEventView;

export type VerifyResult = VerifyReply;

/** `GET /v1/zones/:id/reachability`: a zone reached, with the hops on the way. */
export type ReachedZone = Reachability["direct"][number];

/** One hop of a path between zones. */
export type Hop = ReachedZone["path"][number];

/** How many zones and resources a zone reaches. */
export type BlastRadius = Reachability["blastRadius"];
