import type { Generated, Kysely, Transaction } from "kysely";
import { REQUEST_STATES, type RequestState } from "../shared/request-states.js";

/**
 * The database as Kysely sees it. Times are integers (milliseconds since the epoch) on both
 * dialects; JSON columns are text holding JSON, parsed by the repositories that own them.
 */
export interface UsersTable {
  name: string;
  groups_json: string;
  source: "local" | "bootstrap" | "oidc";
  is_admin: number;
  created_at: number;
}

/** Which OIDC account (issuer, subject) a Firebreak user was created for; bound at first sign-in. */
export interface UserIdentitiesTable {
  issuer: string;
  subject: string;
  user_name: string;
  created_at: number;
  last_sign_in_at: number;
}

export interface ApiTokensTable {
  id: string;
  user_name: string;
  secret_hash: string;
  label: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

// Declared in shared/ so the API schemas name the states without importing the tables.
export { REQUEST_STATES, type RequestState };

export interface RequestsTable {
  id: string;
  requester: string;
  zone: string;
  resource: string | null;
  role: string;
  policy: string | null;
  duration_ms: number;
  reason: string;
  ticket: string | null;
  state: RequestState;
  source_zone: string | null;
  client_address: string | null;
  /** The approval steps still required, as computed by policy at creation (JSON). */
  approvals_json: string;
  /** Signals the decision saw, kept for the audit record and for review (JSON). */
  signals_json: string;
  auto_approved: number;
  created_at: number;
  updated_at: number;
  /** When a pending or approved request lapses if nothing happens; null once it leaves those states. */
  lapses_at: number | null;
  closed_reason: string | null;
  /** When approvers get a reminder (before the lapse); null once sent or when not pending. */
  remind_at: number | null;
}

export interface ApprovalsTable {
  id: string;
  request_id: string;
  approver: string;
  decision: "approve" | "deny";
  /** The approver's groups when they decided: approvals are judged as they stood then. */
  groups_json: string;
  comment: string | null;
  created_at: number;
}

export type GrantState = "active" | "expired" | "revoked";
export type RevocationStatus = "not-needed" | "pending" | "verified" | "failed";
export type ReviewState = "none" | "due" | "accepted" | "flagged";

export interface GrantsTable {
  id: string;
  request_id: string;
  user_name: string;
  zone: string;
  resource: string | null;
  role: string;
  policy: string | null;
  /** Where the request came from: paths are opened from here, certificates bound to it. */
  source_zone: string | null;
  client_address: string | null;
  state: GrantState;
  starts_at: number;
  ends_at: number;
  /** ends_at while active (what the expiry scheduler indexes); null once closed. */
  due_at: number | null;
  closed_at: number | null;
  close_reason: string | null;
  closed_by: string | null;
  factor_kind: string | null;
  factor_at: number | null;
  revocation_status: RevocationStatus;
  review_state: ReviewState;
  review_due_at: number | null;
  review_block: number;
  reviewer: string | null;
  review_notes: string | null;
  reviewed_at: number | null;
  review_alerted_at: number | null;
  revocation_attempts: number;
  /** When the next attempt to close and verify is due, while revocation is pending or failed. */
  revocation_next_at: number | null;
  /** Unique while active: `user \0 zone \0 role`; null once closed (enforces one live grant). */
  active_key: string | null;
}

/** What a connector did for a grant: one row per resource touched, written before and after. */
export interface GrantEffectsTable {
  id: string;
  grant_id: string;
  resource: string;
  connector: string;
  state: "intent" | "issued" | "closed" | "failed";
  detail_json: string;
  /** The issued secret, encrypted under the master key (AES-256-GCM); null when there is none. */
  secret_enc: string | null;
  /** When the secret was shown to its owner; it is shown once. */
  delivered_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface KeyMaterialTable {
  kind: string;
  scope: string;
  public_key: string;
  private_enc: string;
  created_at: number;
}

export interface IncidentsTable {
  id: string;
  source: string;
  external_id: string;
  zone: string;
  severity: number;
  title: string;
  opened_at: number;
  resolved_at: number | null;
  /** The sender's time of the last event applied (epoch ms); older events are superseded. */
  last_event_at: Generated<number>;
}

/** A signed signal delivery already applied, kept until its timestamp is outside the window. */
export interface SignalReceiptsTable {
  source: string;
  receipt: string;
  received_at: number;
  expires_at: number;
}

export interface AuditEventsTable {
  seq: number;
  id: string;
  time: number;
  type: string;
  actor: string;
  zone: string | null;
  resource: string | null;
  subject: string | null;
  context_json: string;
  prev_hash: string;
  hash: string;
}

/** One row (id = 1) holding the chain's head, updated in the same transaction as each append. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

/** Where one audit sink stands: every event up to `delivered_seq` has been delivered or dead-lettered. */
export interface AuditSinkStateTable {
  sink: string;
  delivered_seq: number;
  /** Consecutive failed attempts at the event after `delivered_seq`. */
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  last_error_at: number | null;
  last_delivered_at: number | null;
  delivered_total: number;
  error_total: number;
  /** 1 from the first dead letter (when the alert is raised) until an event is delivered again. */
  failing: number;
  /** The process delivering to this sink, and until when its claim holds. */
  lease_owner: string | null;
  lease_until: number | null;
  created_at: number;
  updated_at: number;
}

/** An event a sink gave up on after its attempts ran out; `queued` once a replay is asked for. */
export interface AuditDeadLettersTable {
  sink: string;
  seq: number;
  event_id: string;
  attempts: number;
  last_error: string;
  state: "dead" | "queued" | "replayed";
  dead_at: number;
  replayed_at: number | null;
}

/** One row (id = 1): the digest of the configuration last applied, so restarts report real changes. */
export interface ConfigStateTable {
  id: number;
  digest: string;
  summary_json: string;
  applied_at: number;
}

export interface MfaFactorsTable {
  id: string;
  user_name: string;
  kind: "totp" | "webauthn";
  label: string;
  /** TOTP: the shared secret, sealed under the master key. */
  secret_enc: string | null;
  /** WebAuthn: the credential id (base64url) and COSE public key (base64url). */
  credential_id: string | null;
  public_key: string | null;
  counter: number;
  transports_json: string;
  /** TOTP: the last time step accepted, so a code is never accepted twice. */
  last_step: number;
  confirmed_at: number | null;
  created_at: number;
  /** What allowed the enrolment: a sign-in alone, a fresh existing factor, or an administrator's code. */
  authorized_by: FactorAuthorization;
  /** From when presentations of the factor count toward a policy; null until confirmed. */
  settles_at: number | null;
}

export type FactorAuthorization = "sign-in" | "factor" | "enrolment-code";

/** One-time codes an administrator issues with a factor reset; only their hash is kept. */
export interface MfaEnrolmentCodesTable {
  user_name: string;
  code_hash: string;
  issued_by: string;
  issued_at: number;
  expires_at: number;
}

/** Failed factor attempts per user in the current window; reserved before a secret is checked. */
export interface FactorAttemptsTable {
  user_name: string;
  window_started_at: number;
  failures: number;
}

export interface FactorPresentationsTable {
  id: string;
  user_name: string;
  kind: string;
  factor_id: string | null;
  ok: number;
  presented_at: number;
}

export interface WebauthnChallengesTable {
  id: string;
  user_name: string;
  purpose: "register" | "assert";
  challenge: string;
  expires_at: number;
  /** Registration: what allowed it when the options were issued. */
  authorized_by: FactorAuthorization | null;
}

/** A network enforcement agent and what it last reported applying. */
export interface EnforcementAgentsTable {
  name: string;
  enforcer: string;
  first_seen_at: number;
  last_seen_at: number;
  grace_ms: number;
  /** `connected`: polled but not reported yet. */
  status: "connected" | "applied" | "failed-closed" | "error";
  applied_digest: string | null;
  applied_at: number | null;
  report_json: string;
}

export interface SshRevocationsTable {
  zone: string;
  /** Decimal: certificate serials are 63-bit. */
  serial: string;
  key_id: string | null;
  valid_before: number | null;
}

/** A session a protocol gateway carried for a grant (src/gateway/NOTES.md). */
export interface GatewaySessionsTable {
  id: string;
  grant_id: string;
  protocol: "postgres" | "ssh";
  resource: string;
  user_name: string;
  client_address: string | null;
  started_at: number;
  ended_at: number | null;
  end_reason: string | null;
  /** Records written so far; final once ended. */
  record_count: number;
  /** The last record's hash once the session ended (the genesis hash for an empty transcript). */
  digest: string | null;
}

/** One transcript record, chained to the previous record of its session. */
export interface GatewayRecordsTable {
  session_id: string;
  seq: number;
  time: number;
  kind: string;
  payload_json: string;
  prev_hash: string;
  hash: string;
}

/** What the gateway holds for a grant on a gateway resource: the target login, sealed, and the token's verifier. */
export interface GatewayCredentialsTable {
  grant_id: string;
  resource: string;
  login: string;
  password_enc: string;
  scram_salt: string;
  scram_iterations: number;
  stored_key: string;
  server_key: string;
  created_at: number;
}

/** One emergency kit made (src/emergency): what exists on the target, never its secret. */
export interface EmergencyKitsTable {
  id: string;
  zone: string;
  resource: string;
  role: string;
  external_id: string;
  detail_json: string;
  /** The kit's journal public key (PEM): recorded openings are checked against it. */
  journal_key: string;
  /** The signed kit file as written (its credential sealed): `emergency kit ZONE` returns it. */
  kit_json: string;
  state: "live" | "closed";
  created_at: number;
  ends_at: number;
  closed_at: number | null;
  close_reason: string | null;
}

/** A recorded opening imported from a journal, once. */
export interface EmergencyOpeningsTable {
  kit_id: string;
  signature: string;
  opener: string;
  opened_at: number;
  grant_id: string;
  imported_at: number;
}

export interface Database {
  emergency_kits: EmergencyKitsTable;
  emergency_openings: EmergencyOpeningsTable;
  gateway_sessions: GatewaySessionsTable;
  gateway_records: GatewayRecordsTable;
  gateway_credentials: GatewayCredentialsTable;
  ssh_revocations: SshRevocationsTable;
  mfa_factors: MfaFactorsTable;
  factor_presentations: FactorPresentationsTable;
  webauthn_challenges: WebauthnChallengesTable;
  mfa_enrolment_codes: MfaEnrolmentCodesTable;
  factor_attempts: FactorAttemptsTable;
  users: UsersTable;
  api_tokens: ApiTokensTable;
  user_identities: UserIdentitiesTable;
  requests: RequestsTable;
  approvals: ApprovalsTable;
  grants: GrantsTable;
  grant_effects: GrantEffectsTable;
  incidents: IncidentsTable;
  signal_receipts: SignalReceiptsTable;
  key_material: KeyMaterialTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  audit_sink_state: AuditSinkStateTable;
  audit_dead_letters: AuditDeadLettersTable;
  config_state: ConfigStateTable;
  enforcement_agents: EnforcementAgentsTable;
  replicas: ReplicasTable;
  drill_runs: DrillRunsTable;
  drill_schedule: DrillScheduleTable;
}

/** One run of a drill with its timed steps (src/drills/NOTES.md). */
export interface DrillRunsTable {
  id: string;
  drill: string;
  zone: string;
  /** `schedule` or `manual`. */
  trigger: string;
  actor: string;
  /** `hostname:pid` of the process running it. */
  owner: string;
  grant_id: string | null;
  /** `running`, `passed`, `failed`, `skipped`, or `abandoned` (its process died). */
  outcome: string;
  failed_step: string | null;
  steps_json: string;
  started_at: number;
  finished_at: number | null;
}

/** When a drill is next due; the due time is claimed by compare-and-set. */
export interface DrillScheduleTable {
  drill: string;
  next_at: number;
  overdue_alerted_at: number | null;
}

/** A serving process and its last heartbeat (src/replicas/NOTES.md). */
export interface ReplicasTable {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  config_digest: string;
  address: string | null;
  started_at: number;
  heartbeat_at: number;
  /** The last audit seq its change feed had applied at the heartbeat. */
  seen_seq: number;
  /** 1 when it could confirm it was current at the heartbeat. */
  current: number;
  not_current_reason: string | null;
  stopped_at: number | null;
}

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Either the database or an open transaction: repositories accept both. */
export type Executor = Kysely<Database> | Transaction<Database>;
export type { Generated };
