import type { SinkRecord } from "../audit/analyst-view.js";
import type { AuditSinkConfig, ResourceConfigOf, ResourceType, SinkType } from "../config/schema.js";
import type { EnforcerKind, SignalSourceKind } from "./settings.js";

/**
 * The four kinds of plug-in, one contract each, and beside each the contract of its settings. The
 * settings registries (`plugins/settings.ts`) name the kinds and the configuration schema is built
 * from them; the implementation registries (`plugins/registry.ts`) are typed `Record<Kind, Contract>`,
 * so a kind with settings but no implementation is a compile-time error.
 */

// ---------------------------------------------------------------------------------------------
// Settings: declared in `settings-contract.ts` (imported by the configuration schema, so it must not
// import this file), re-exported here for the implementations.

export type {
  ConfigPath,
  EnforcerSettings,
  RawSettings,
  ResourceSettings,
  SettingsReport,
  SignalSettings,
  SinkSettings,
} from "./settings-contract.js";

// ---------------------------------------------------------------------------------------------
// Implementations.

/** What a connector needs to know to issue access for one grant on one resource. */
export interface IssueContext<Type extends ResourceType = ResourceType> {
  grantId: string;
  user: string;
  zone: string;
  resourceName: string;
  resource: ResourceConfigOf<Type>;
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

export interface RevokeContext<Type extends ResourceType = ResourceType> {
  grantId: string;
  user: string;
  resourceName: string;
  resource: ResourceConfigOf<Type>;
  externalId: string;
  /** What `issue` returned as detail (e.g. the certificate serial a revocation list needs). */
  detail: Record<string, unknown>;
}

/**
 * A credential connector turns a grant into access on a target system and takes it away again.
 * `issue` must be idempotent per grant id (a crash may repeat it); `revoke` must succeed when the
 * thing is already gone; `verifyRevoked` proves the credential no longer works.
 */
export interface CredentialConnector<Type extends ResourceType = ResourceType> {
  readonly kind: Type;
  /** False when this build cannot talk to such a target; activation is then refused. */
  readonly available: boolean;
  /**
   * The name `issue` will create for this grant, derived deterministically so it is recorded as
   * intent before the target is touched: after a crash the reconciler knows what to look for.
   */
  plannedExternalId(grantId: string, user: string, resource?: ResourceConfigOf<Type>): string;
  issue(context: IssueContext<Type>): Promise<IssuedCredential>;
  revoke(context: RevokeContext<Type>): Promise<void>;
  verifyRevoked(context: RevokeContext<Type>): Promise<boolean>;
  /**
   * The external ids that exist on the target under Firebreak's naming prefix, so the reconciler
   * can revoke whatever has no live grant (stale privilege). Connectors whose credentials cannot
   * be listed (certificates) return an empty list.
   */
  listManaged(resourceName: string, resource: ResourceConfigOf<Type>): Promise<string[]>;
  /**
   * What is wrong with the resource's settings that only the target can tell (a role they name
   * that does not exist there), one sentence each; empty when nothing is. Throws when the target
   * cannot be reached. Checked at start, after a reload and before each activation, so a setting
   * that would make every revocation fail refuses activation instead. Connectors with nothing to
   * check leave it out.
   */
  checkTarget?(resourceName: string, resource: ResourceConfigOf<Type>): Promise<string[]>;
  /**
   * What the target can tell about a credential's use (emergency kits, src/emergency/NOTES.md):
   * its live sessions, and how many logins it made when the target counts them per account (null
   * when it does not). Connectors whose target can tell nothing leave it out.
   */
  usage?(
    resourceName: string,
    resource: ResourceConfigOf<Type>,
    externalId: string,
  ): Promise<CredentialUsage>;
  /** Releases connections and other resources. */
  close(): Promise<void>;
}

/** What a target can tell about one credential's use. */
export interface CredentialUsage {
  liveSessions: number;
  /** Logins counted by the target since the account was made; null when the target keeps no count. */
  connections: number | null;
}

/** What every connector factory may use. */
export interface ConnectorDeps {
  /** Resolves a secret reference (`env:`/`file:`) from the configuration. */
  secret(ref: string): string;
  /** Per-zone key material kept encrypted in Firebreak's database (SSH certificate authorities). */
  keys: {
    getOrCreate(
      /** `ssh-ca`: a zone's user (and host) CA; `ssh-gateway-host`: the SSH gateway's host key. */
      kind: "ssh-ca" | "ssh-gateway-host",
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

/**
 * A network enforcer opens and closes the paths that grants need. `open` returns the path's rule
 * identity (audited with `flow.opened`) and what is safe to record about it; `close` resolves only
 * once the path is gone, and throws while it may still be open, so the grant's revocation is
 * retried and alerted until it is. Both must be idempotent per grant id.
 */
export interface NetworkEnforcer {
  readonly kind: EnforcerKind;
  open(path: PathSpec): Promise<{ ruleId: string; detail?: Record<string, unknown> }>;
  close(grantId: string): Promise<{ detail?: Record<string, unknown> } | undefined>;
}
export type { EnforcerKind };

/** What every enforcer factory may use. */
export interface EnforcerDeps {
  /** The published desired network state: announce a change, wait for the agents to apply it. */
  enforcement: {
    changed(): void;
    waitOpen(grantId: string, timeoutMs: number): Promise<{ confirmed: string[]; pending: string[] }>;
    waitClosed(grantId: string, timeoutMs: number): Promise<{ confirmed: string[]; pending: string[] }>;
  };
  /** How long opening or closing a path waits for agents to confirm. */
  confirmTimeoutMs?: number;
}

/**
 * A sink delivers committed audit events to one receiver. `deliver` gets records in seq order and
 * resolves only once the receiver has all of them, as far as its transport can tell; otherwise it
 * throws (a `SinkDeliveryError` says how many leading records did arrive). It honours `signal`,
 * which aborts a delivery that takes too long. Delivery is at least once: after a failure or a
 * restart the same event may arrive again, with the same id, for the receiver to de-duplicate.
 */
export interface AuditSink {
  readonly kind: SinkKind;
  /** Where it delivers, printable and free of secrets: `tcp+tls://siem.internal:6514`. */
  readonly target: string;
  deliver(records: readonly SinkRecord[], signal: AbortSignal): Promise<void>;
  /** Releases connections and files. */
  close(): Promise<void>;
}
export type SinkKind = SinkType;

/** What every sink factory may use. */
export interface SinkDeps {
  /** Resolves a secret reference (`env:`/`file:`) from the configuration. */
  secret(ref: string): string;
  /** The HOSTNAME and PROCID syslog messages carry. */
  hostname: string;
  procId: string;
  now(): number;
}
export type SinkFactory = (config: AuditSinkConfig, deps: SinkDeps) => AuditSink;

/** A normalised incident signal from an outside system. */
export interface IncidentSignal {
  source: SignalSourceKind;
  externalId: string;
  zone: string;
  severity: number;
  title: string;
  status: "open" | "resolved";
  /**
   * When the event happened according to the sender (epoch ms). Events of one incident are applied
   * in this order: an older one never undoes a newer one, and a resolved incident reopens only
   * for a strictly newer event.
   */
  occurredAt: number;
}

/** What one authenticated webhook delivery says, and what identifies it against replay. */
export interface SignalDelivery {
  signals: IncidentSignal[];
  /**
   * A value unique to this delivery (an event id, or the signature over timestamp and body); a
   * delivery whose receipt was seen before is refused. Null when the format has none.
   */
  receipt: string | null;
  /** The sender's signed time (epoch ms), which must be within `toleranceMs` of ours; null when unsigned. */
  sentAt: number | null;
}

/**
 * A signal source authenticates and translates one webhook format into incident signals.
 * `authenticate` must compare secrets in constant time.
 */
export interface SignalSource {
  readonly kind: SignalSourceKind;
  /** How far a delivery's `sentAt` may be from the server's clock, either way. */
  readonly toleranceMs: number;
  authenticate(headers: Record<string, string | string[] | undefined>, rawBody: Buffer): boolean;
  /** Reads an authenticated delivery; throws a ZodError when the payload is not of the format. */
  parse(body: unknown, headers: Record<string, string | string[] | undefined>): SignalDelivery;
}
export type { SignalSourceKind };
