/**
 * The replies of the Firebreak API the console reads, as the server's zod reply schemas declare
 * them (src/requests/request.views.ts, src/grants/grant.views.ts, src/zones/zone.routes.ts,
 * src/audit/audit.routes.ts, src/users/user.routes.ts). Kept by hand: the console is built
 * separately from the server, and the end-to-end tests catch a drift.
 */

export interface Principal {
  name: string;
  groups: string[];
  isAdmin: boolean;
  isAuditor: boolean;
}

export interface ApprovalStep {
  from: string[];
  count: number;
  have: string[];
  remaining: number;
}

export interface RequestView {
  id: string;
  state: string;
  requester: string;
  zone: string;
  resource: string | null;
  role: string;
  policy: string | null;
  duration: string;
  durationSeconds: number;
  reason: string;
  ticket: string | null;
  sourceZone: string | null;
  clientAddress: string | null;
  autoApproved: boolean;
  createdAt: string;
  lapsesAt: string | null;
  closedReason: string | null;
  requires: { approvals: ApprovalStep[]; factors: string[] };
  approvals: { approver: string; decision: string; comment: string | null; at: string }[];
  grantId: string | null;
  next: string;
}

export interface GrantView {
  id: string;
  requestId: string;
  user: string;
  zone: string;
  resource: string | null;
  role: string;
  policy: string | null;
  /** Where the grant's network path starts (absent on servers older than the console). */
  sourceZone?: string | null;
  state: string;
  startsAt: string;
  endsAt: string;
  secondsLeft: number;
  closedAt: string | null;
  closeReason: string | null;
  closedBy: string | null;
  factor: { kind: string; at: string } | null;
  revocation: { status: string; attempts: number; nextAttemptAt: string | null };
  review: {
    state: string;
    dueAt: string | null;
    overdue: boolean;
    reviewer: string | null;
    notes: string | null;
    reviewedAt: string | null;
  };
  effects: { resource: string; connector: string; state: string }[];
}

export interface CredentialView {
  resource: string;
  connector: string;
  state: string;
  detail: Record<string, unknown>;
  secret: string | null;
}

export interface ZoneView {
  name: string;
  description: string | null;
  labels: Record<string, string>;
  cidrs: string[];
  enforcement: string;
  /** `address`: what users connect to and where a grant's path leads (absent on older servers). */
  resources: { name: string; type: string; roles: string[]; address?: string | null }[];
  policies: { name: string; roles: string[] }[];
  flowsIn: { from: string; ports: string[] }[];
  flowsOut: { to: string; ports: string[] }[];
  openIncidents: { id: string; severity: number; title: string; openedAt: string }[];
}

export interface AuditEvent {
  seq: number;
  id: string;
  time: string;
  type: string;
  actor: string;
  zone: string | null;
  resource: string | null;
  subject: string | null;
  context: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface VerifyResult {
  ok: boolean;
  count: number;
  firstBadSeq: number | null;
  reason: string | null;
  headHash: string | null;
}

/** One unmet condition of a decision (src/policy/engine.ts `Reason`). */
export interface Reason {
  code: string;
  policy?: string;
  field?: string;
  message: string;
  expected?: unknown;
  actual?: unknown;
}

export interface PolicyRequirements {
  eligible: string[];
  roles: string[];
  resources: string[] | null;
  approvals: { from: string[]; count: number }[];
  factors: string[];
  factorFreshnessMs: number;
  duration: { defaultMs: number; maxMs: number };
  justification: { minLength: number; ticketPattern: string | null };
  sourceZones: string[] | null;
  condition: string | null;
  autoApproveCondition: string | null;
  review: { withinMs: number; blockWhenOverdue: boolean; by: string[] | null };
}

export type Decision =
  | { outcome: "allow"; via: "standing"; role: string; binding: Record<string, string> }
  | {
      outcome: "allow" | "needs-approval";
      via?: "auto-approve" | "policy";
      policy: string;
      durationMs: number;
      factors: string[];
      approvals?: { from: string[]; count: number }[];
      review: { withinMs: number; blockWhenOverdue: boolean; by: string[] | null };
    }
  | { outcome: "deny"; reasons: Reason[] };

export interface Explanation {
  decision: Decision;
  target: { zone: string; resource: string | null } | null;
  standing: { binding: Record<string, string>; holds: boolean }[];
  policies: { policy: string; applies: boolean; unmet: Reason[]; requires: PolicyRequirements }[];
}

/** One hop of a path between zones (src/segmentation/reachability.ts `Hop`). */
export interface Hop {
  from: string;
  to: string;
  ports: string[];
  via: "flow" | "grant";
  grants: string[];
}

export interface ReachedZone {
  zone: string;
  path: Hop[];
  resources: string[];
}

export interface BlastRadius {
  zones: number;
  resources: number;
  directZones: number;
  directResources: number;
}

/** `GET /v1/zones/:id/reachability`. */
export interface Reachability {
  zone: string;
  enforcement: string;
  includesGrants: boolean;
  direct: ReachedZone[];
  transitive: ReachedZone[];
  reachedBy: { direct: string[]; transitive: string[] };
  blastRadius: BlastRadius;
}

/** `POST /v1/zones/blast-radius`: how a grant would change what its source zone reaches. */
export interface BlastRadiusChanges {
  changes: {
    sourceZone: string;
    before: BlastRadius;
    after: BlastRadius;
    addedZones: ReachedZone[];
    addedResources: string[];
    paths: { resource: string; to: string }[];
  }[];
  note: string | null;
}
