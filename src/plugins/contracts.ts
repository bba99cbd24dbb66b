import type { ResourceConfig, ResourceType } from "../config/schema.js";

/**
 * The four kinds of plug-in, one contract each. A registry is typed `Record<Kind, Contract>` so a
 * kind named in the configuration schema without an implementation is a compile-time error.
 */

/** What a connector needs to know to issue access for one grant on one resource. */
export interface IssueContext {
  grantId: string;
  user: string;
  zone: string;
  resourceName: string;
  resource: ResourceConfig;
  role: string;
  startsAt: number;
  endsAt: number;
  sourceZone: string | null;
}

/** What a connector issued: `detail` is safe to store and show; `secret` is shown once to its owner. */
export interface IssuedCredential {
  /** The name of the thing created on the target (a login role, a certificate serial). */
  externalId: string;
  detail: Record<string, unknown>;
  secret: string | null;
}

export interface RevokeContext {
  grantId: string;
  user: string;
  resourceName: string;
  resource: ResourceConfig;
  externalId: string;
}

/**
 * A credential connector turns a grant into access on a target system and takes it away again.
 * `issue` must be idempotent per grant id (a crash may repeat it); `revoke` must succeed when the
 * thing is already gone; `verifyRevoked` proves the credential no longer works.
 */
export interface CredentialConnector {
  readonly kind: ResourceType;
  /** False when this build cannot talk to such a target; activation is then refused. */
  readonly available: boolean;
  issue(context: IssueContext): Promise<IssuedCredential>;
  revoke(context: RevokeContext): Promise<void>;
  verifyRevoked(context: RevokeContext): Promise<boolean>;
}

/** A network path opened for one grant's window. */
export interface PathSpec {
  grantId: string;
  fromZone: string | null;
  fromAddress: string | null;
  toAddress: string;
  endsAt: number;
}

/** A network enforcer opens and closes the paths that grants need. */
export interface NetworkEnforcer {
  readonly kind: EnforcerKind;
  open(path: PathSpec): Promise<{ ruleId: string }>;
  close(grantId: string): Promise<void>;
}
export type EnforcerKind = "log";

/** A sink receives committed audit events, in order, at least once. */
export interface AuditSink {
  readonly kind: SinkKind;
  deliver(
    events: readonly { seq: number; id: string; type: string; [key: string]: unknown }[],
  ): Promise<void>;
}
export type SinkKind = "file" | "syslog" | "splunk-hec" | "webhook";

/** A normalised incident signal from an outside system. */
export interface IncidentSignal {
  source: SignalSourceKind;
  externalId: string;
  zone: string;
  severity: number;
  title: string;
  status: "open" | "resolved";
}

/**
 * A signal source authenticates and translates one webhook format into incident signals.
 * `authenticate` must compare secrets in constant time.
 */
export interface SignalSource {
  readonly kind: SignalSourceKind;
  authenticate(headers: Record<string, string | string[] | undefined>, rawBody: Buffer): boolean;
  parse(body: unknown): IncidentSignal[];
}
export type SignalSourceKind = "alertmanager" | "pagerduty" | "generic";
