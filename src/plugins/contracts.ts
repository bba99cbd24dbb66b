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
  /** CIDRs of the source zone (for certificates bound to where the request came from); empty when unknown. */
  sourceCidrs: readonly string[];
  /** The client address the request came from, when known. */
  clientAddress: string | null;
  /** The requester's SSH public key (authorized_keys format), for connectors that sign one. */
  publicKey: string | null;
}

/**
 * What a connector issued. `detail` is safe to store, audit and show (user name, host, port,
 * database, certificate serial); `secret` (a password, a certificate) is encrypted at rest and
 * shown once to the grant's owner, never logged or audited.
 */
export interface IssuedCredential {
  /** The name of the thing created on the target (a login role, a certificate key id). */
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
  /** What `issue` returned as detail (e.g. the certificate serial a revocation list needs). */
  detail: Record<string, unknown>;
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
  /**
   * The name `issue` will create for this grant, derived deterministically so it is recorded as
   * intent before the target is touched: after a crash the reconciler knows what to look for.
   */
  plannedExternalId(grantId: string, user: string, resource?: ResourceConfig): string;
  issue(context: IssueContext): Promise<IssuedCredential>;
  revoke(context: RevokeContext): Promise<void>;
  verifyRevoked(context: RevokeContext): Promise<boolean>;
  /**
   * The external ids that exist on the target under Firebreak's naming prefix, so the reconciler
   * can revoke whatever has no live grant (stale privilege). Connectors whose credentials cannot
   * be listed (certificates) return an empty list.
   */
  listManaged(resourceName: string, resource: ResourceConfig): Promise<string[]>;
  /** Releases connections and other resources. */
  close(): Promise<void>;
}

/** What every connector factory may use. */
export interface ConnectorDeps {
  /** Resolves a secret reference (`env:`/`file:`) from the configuration. */
  secret(ref: string): string;
  /** Per-zone key material kept encrypted in Firebreak's database (SSH certificate authorities). */
  keys: {
    getOrCreate(
      kind: "ssh-ca",
      zone: string,
      create: () => Promise<{ privateKey: string; publicKey: string }>,
    ): Promise<{ privateKey: string; publicKey: string }>;
  };
  now(): number;
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
