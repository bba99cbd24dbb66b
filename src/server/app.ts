import { hostname } from "node:os";
import { dirname } from "node:path";
import type { FastifyInstance } from "fastify";
import { createAnchorKeeper } from "../audit/anchor.js";
import { readHead } from "../audit/audit.repo.js";
import { createAuditRoutes } from "../audit/audit.routes.js";
import { createAuditService } from "../audit/audit.service.js";
import { createCheckpointer, createCheckpointSchedule, createSigningKeyHolder } from "../audit/checkpoint.js";
import { createAuditDelivery } from "../audit/delivery.js";
import { createDeliveryRoutes } from "../audit/delivery.routes.js";
import { createEventStreams } from "../audit/event-stream.js";
import { createEventVisibility } from "../audit/event-visibility.js";
import { createRelatedLookup } from "../audit/related.js";
import { resolveSecret } from "../config/secrets.js";
import { generateEd25519KeyPair } from "../connectors/ssh/keygen.js";
import { loadRevocations, saveRevocations } from "../connectors/ssh/revocation.repo.js";
import { createSshConnector } from "../connectors/ssh/ssh.connector.js";
import { createSshRoutes } from "../connectors/ssh/ssh.routes.js";
import { createSshHostService } from "../connectors/ssh/ssh.service.js";
import { type DatabaseHandle, migrateToLatest, openDatabase } from "../db/database.js";
import { pingDatabase } from "../db/health.repo.js";
import { createTransactionRunner } from "../db/transaction.js";
import { createDecisionRoutes } from "../decisions/decision.routes.js";
import { createDecisionService } from "../decisions/decision.service.js";
import { createDrillRoutes } from "../drills/drill.routes.js";
import { createDrillService } from "../drills/drill.service.js";
import { createEmergencyRoutes } from "../emergency/emergency.routes.js";
import { createEmergencyService } from "../emergency/emergency.service.js";
import { isFirebreakError } from "../errors.js";
import { createFactorRoutes } from "../factors/factor.routes.js";
import { createFactorService } from "../factors/factor.service.js";
import { createGatewayCredentials, usesGateway } from "../gateway/credentials.js";
import { createSessionRoutes } from "../gateway/session.routes.js";
import { createGatewaySessions, createSessionHolder } from "../gateway/session.service.js";
import { createSessionViews } from "../gateway/session-views.service.js";
import { createEffectRunner } from "../grants/effects.js";
import { createExpiryScheduler } from "../grants/expiry.scheduler.js";
import { listActiveGrants } from "../grants/grant.repo.js";
import { createGrantRoutes } from "../grants/grant.routes.js";
import { createGrantService, type GrantListener } from "../grants/grant.service.js";
import { createReconciler } from "../grants/reconciler.js";
import { registerConsole } from "../http/console.js";
import { createHttpServer } from "../http/server.js";
import { createIdentityRoutes } from "../identity/oidc.routes.js";
import { createOidcService } from "../identity/oidc.service.js";
import { presentedCredential } from "../identity/session.cookies.js";
import { createSessionService } from "../identity/session.service.js";
import { identitySettings } from "../identity/settings.js";
import { createMetrics } from "../metrics/metrics.js";
import { createMetricsRoutes } from "../metrics/metrics.routes.js";
import { createNotifier } from "../notify/notifier.js";
import { createConnectorRegistry, sinkRegistry } from "../plugins/registry.js";
import { createAccessHolder } from "../policy/access-holder.js";
import { createAccessIndex } from "../policy/access-index.js";
import { suggestedApprovers } from "../policy/visibility.js";
import { type ChangeFeedOptions, createLocalFeed, createPostgresFeed } from "../replicas/change-feed.js";
import { createReplicaFollower } from "../replicas/follower.js";
import { openAuditListener } from "../replicas/replica.repo.js";
import { createReplicaRoutes } from "../replicas/replica.routes.js";
import { createReplicaService, denyingIndex } from "../replicas/replica.service.js";
import { createRequestRoutes } from "../requests/request.routes.js";
import { createRequestService } from "../requests/request.service.js";
import { createRequestActions } from "../requests/request-actions.service.js";
import { createRuntimeHolder, type Runtime } from "../runtime/runtime.service.js";
import { createKeyStore } from "../secrets/key-store.js";
import { createSecretBox, loadMasterKeys } from "../secrets/secret-box.js";
import { createSegmentationRoutes } from "../segmentation/segmentation.routes.js";
import { type Clock, systemClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";
import { createSignalRoutes } from "../signals/signal.routes.js";
import { createSignalService } from "../signals/signal.service.js";
import { isTrustedProxy } from "../signals/source-zone.js";
import { listUsers } from "../users/user.repo.js";
import { createUserRoutes } from "../users/user.routes.js";
import { createUserService, directoryCaseConflicts } from "../users/user.service.js";
import { VERSION } from "../version.js";
import { createZoneRoutes } from "../zones/zone.routes.js";
import { createEnforcement, type EnforcementOptions } from "./enforcement.js";
import { createGateways } from "./gateway.js";
import { createSystemRoutes } from "./system.routes.js";

export interface AppOptions {
  configPath: string;
  databaseUrl: string;
  /** Where the development master key lives (created 0600 on first start unless `production`). */
  masterKeyFile?: string;
  /** Production mode refuses to generate a master key: it must come from FIREBREAK_MASTER_KEY or the key file. */
  production?: boolean;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  /** How grants' network paths are enforced (default: recorded only, by the `log` enforcer). */
  enforcement?: EnforcementOptions;
  /** How often an open `/v1/events` stream checks that its credential still holds (default 5 s). */
  eventStreamRecheckMs?: number;
  /** How the change feed of several replicas on PostgreSQL confirms it is current (src/replicas/NOTES.md). */
  replicas?: ChangeFeedOptions;
  log?: {
    info(message: string, fields?: Record<string, unknown>): void;
    error(message: string, fields?: Record<string, unknown>): void;
  };
}

const quietLog = { info() {}, error() {} };
/** How often the reconciler looks for stale privilege on the targets. */
const RECONCILE_INTERVAL_MS = 60_000;
/** How often emergency kits are checked for rotation (a kit is rotated well before its end). */
const EMERGENCY_INTERVAL_MS = 60_000;
/** How often refused-signal summaries are written and expired signal receipts forgotten. */
const SIGNAL_UPKEEP_INTERVAL_MS = 10_000;
/** How often the chain's head is signed when `audit.checkpoint.interval` is not set. */
const CHECKPOINT_INTERVAL_MS = 5 * 60_000;
/** How often due and overdue drills are looked for (the schedule's claim makes one replica run each). */
const DRILL_INTERVAL_MS = 30_000;
/** How long shutdown waits for the sinks to take the final checkpoint. */
const SHUTDOWN_FLUSH_MS = 5_000;

/**
 * The composition root: the one place that calls the factories and wires them together.
 * `start()` migrates, finishes what fell due while the server was down, then serves.
 */
export async function createApp(options: AppOptions) {
  const clock = options.clock ?? systemClock;
  const env = options.env ?? process.env;
  const log = options.log ?? quietLog;
  const handle: DatabaseHandle = openDatabase(options.databaseUrl);
  const { db } = handle;
  await migrateToLatest(db);

  const bus = createEventBus();
  const inTransaction = createTransactionRunner({ db, clock, bus });
  const access = createAccessHolder(async () => {
    const stored = await listUsers(db);
    const next = createAccessIndex(
      current().policy,
      stored.map((u) => ({ name: u.name, groups: u.groups })),
    );
    for (const grant of await listActiveGrants(db))
      next.addGrant(grant.id, grant.user, grant.zone, grant.role, grant.endsAt, grant.resource);
    return next;
  });
  // Every committed change, whichever replica made it (src/replicas/NOTES.md). On SQLite the bus.
  const feed =
    handle.dialect === "postgres"
      ? createPostgresFeed({
          db,
          bus,
          listen: (handlers) =>
            openAuditListener({
              url: options.databaseUrl,
              applicationName: `firebreak-feed ${process.pid}`,
              ...handlers,
            }),
          options: options.replicas,
          log,
        })
      : createLocalFeed({ bus, head: async () => (await readHead(db)).seq });
  const follower = createReplicaFollower({ db, access, feed, now: () => clock.now() });
  const runtime = await createRuntimeHolder({
    path: options.configPath,
    db,
    inTransaction,
    env: options.env,
    // The reload answers once the new configuration is in force, access index included.
    onApplied: async () => {
      await access.rebuild();
      // Not awaited: a slow target must not hold up the reload's answer.
      void checkTargets();
    },
    // A directory user spelled like a stored one but for case would be a second principal.
    check: (config) => directoryCaseConflicts(db, config),
  });
  const current = (): Runtime => runtime.current();
  /** Settings only a target can contradict (a missing reassignTo role): alerted, and logged. */
  const checkTargets = async () => {
    try {
      for (const finding of await grants.checkTargets("system:firebreak"))
        log.error("resource misconfigured", { resource: finding.resource, problems: finding.problems });
    } catch (error) {
      log.error("target check failed", { error: error instanceof Error ? error.message : String(error) });
    }
  };

  const users = createUserService({ db, clock, inTransaction, config: () => current().config });
  const signals = createSignalService({
    db,
    clock,
    inTransaction,
    config: () => current().config,
    sources: () => current().signalSources,
  });
  const decisions = createDecisionService({ db, clock, current, users, signals });
  const requests = createRequestService({
    db,
    clock,
    inTransaction,
    current,
    signals,
    sourceZoneOf: (address) => current().sourceZoneOf(address),
    onDecision: (outcome, seconds) => metrics.observeDecision(outcome, seconds),
  });
  const keys = loadMasterKeys({
    env,
    keyFile: options.masterKeyFile ?? "./data/master.key",
    production: options.production ?? false,
  });
  const box = createSecretBox(keys.current, keys.previous);
  const connectorDeps = {
    secret: (ref: string) => resolveSecret(ref as never, env),
    keys: createKeyStore({ db, box, now: () => clock.now() }),
    now: () => clock.now(),
  };
  const ssh = createSshConnector({
    ...connectorDeps,
    publishRevocations: (zone, _krl, revoked) => saveRevocations(db, zone, revoked),
    loadRevocations: (zone) => loadRevocations(db, zone),
  });
  const connectors = createConnectorRegistry(connectorDeps, { ssh });
  const enforcement = createEnforcement({
    db,
    clock,
    inTransaction,
    // The desired state follows every replica's changes, not only this one's.
    bus: feed,
    config: () => current().config,
    options: options.enforcement,
    log,
  });
  const enforcer = enforcement.enforcer;
  const effects = createEffectRunner({ connectors, enforcer, config: () => current().config });
  let scheduler: ReturnType<typeof createExpiryScheduler>;
  // Gateway sessions (issue 12): transcripts, and the sessions held open here, cut when a grant closes.
  const gatewaySessions = createGatewaySessions({ db, clock, inTransaction });
  const heldSessions = createSessionHolder();
  const gatewayCredentials = createGatewayCredentials({ db, box, bound: () => gateways.address() });
  const listener: GrantListener = {
    activated(grant) {
      follower.activated(grant);
      scheduler.poke();
    },
    closed(grant) {
      // The follower cuts the gateway sessions held here at once (below), before the targets are
      // touched; the revocation counts what is left.
      follower.closed(grant);
    },
    retryScheduled() {
      scheduler.poke();
    },
  };
  // A grant ended on any replica cuts the gateway sessions this process holds for it.
  follower.subscribe((change) => {
    if (change.active) return;
    const { grant } = change;
    const why = grant.closeReason ? `${grant.state}: ${grant.closeReason}` : grant.state;
    void heldSessions.cutGrant(grant.id, `grant ${grant.id} was ${why}`);
  });
  const grants = createGrantService({
    db,
    clock,
    inTransaction,
    current,
    effects,
    enforcerKind: enforcer.kind,
    box,
    requests,
    signals,
    listener,
    gatewaySessions: heldSessions,
    gatewayCredentials: { covers: usesGateway, bind: gatewayCredentials.bind },
  });
  const gateways = createGateways({
    db,
    clock,
    inTransaction,
    config: () => current().config,
    credentials: gatewayCredentials,
    sessions: gatewaySessions,
    holder: heldSessions,
    sourceZoneOf: (address) => current().sourceZoneOf(address),
    secret: (ref) => resolveSecret(ref as never, env),
    log,
    ssh: { keys: connectorDeps.keys, connector: ssh },
  });
  scheduler = createExpiryScheduler({
    db,
    clock,
    inTransaction,
    grants,
    requests,
    onError: (error) =>
      log.error("scheduler pass failed", { error: error instanceof Error ? error.message : String(error) }),
  });
  const audit = createAuditService({ db });
  const logError = (message: string) => (error: unknown) =>
    log.error(message, { error: error instanceof Error ? error.message : String(error) });
  const signingKey = createSigningKeyHolder({
    reference: () => current().config.audit?.signingKey,
    secret: (ref) => resolveSecret(ref as never, env),
    onError: logError("audit.signingKey cannot be used; checkpoints keep the previous key"),
  });
  signingKey.init();
  const anchor = createAnchorKeeper({
    db,
    inTransaction,
    file: () => current().config.audit?.anchor?.file,
    // The SQLite database's directory: whoever can rewrite the database there can rewrite the anchor.
    dataDirectories: handle.dialect === "sqlite" ? [dirname(handle.location.slice("sqlite:".length))] : [],
    onError: logError("the audit anchor was not advanced"),
  });
  await anchor.init().catch(async (error: unknown) => {
    await handle.close();
    throw error;
  });
  const checkpointer = createCheckpointer({
    inTransaction,
    signingKey: () => signingKey.current(),
    afterWrite: () => anchor.sync(),
  });
  const checkpoints = createCheckpointSchedule({
    checkpointer,
    intervalMs: () => current().config.audit?.checkpoint?.interval ?? CHECKPOINT_INTERVAL_MS,
    onError: logError("could not write an audit checkpoint"),
  });
  const auditDelivery = createAuditDelivery({
    db,
    clock,
    inTransaction,
    bus,
    registry: sinkRegistry,
    sinkDeps: {
      secret: (ref) => resolveSecret(ref as never, env),
      hostname: hostname(),
      procId: String(process.pid),
      now: () => clock.now(),
    },
    related: createRelatedLookup(db),
    config: () => ({
      sinks: current().config.audit?.sinks ?? [],
      delivery: current().config.audit?.delivery,
    }),
    publicUrl: () => current().config.server?.publicUrl ?? null,
    log,
    observer: {
      delivered: (sink, lags) => metrics.observer.delivered(sink, lags),
      failed: (sink) => metrics.observer.failed(sink),
      deadLettered: (sink) => metrics.observer.deadLettered(sink),
    },
  });
  const metrics = createMetrics({
    db,
    bus,
    sinks: () => auditDelivery.status(),
    drills: () => drills.status(),
    onError: logError("a metric could not be observed"),
  });
  // Sinks follow configuration reloads (config.applied is published after the new one is in place).
  bus.subscribe((event) => {
    if (event.type === "config.applied")
      auditDelivery.reconfigure().catch(logError("audit sinks could not follow the new configuration"));
  });
  const sessions = createSessionService({
    db,
    clock,
    inTransaction,
    config: () => current().config,
    users,
    // The access index learns an OIDC user's groups as the provider reports them at each sign-in.
    onSignedIn: (user, groups) => access.setUser(user, groups),
  });
  const oidc = createOidcService({
    config: () => current().config,
    clock,
    box,
    secret: (ref) => resolveSecret(ref, env),
    log,
  });
  const factors = createFactorService({
    db,
    clock,
    inTransaction,
    box,
    webauthn: () => {
      const settings = current().config.identity?.webauthn;
      return {
        rpId: settings?.rpId ?? "localhost",
        rpName: settings?.rpName ?? "Firebreak",
        origins: settings?.origins ?? ["http://localhost:8080"],
      };
    },
    enrolment: () => {
      const settings = current().config.identity?.factorEnrolment;
      return { settleMs: settings?.settle ?? 24 * 3_600_000, requireCode: settings?.requireCode ?? false };
    },
    users,
  });
  const requestActions = createRequestActions({
    db,
    clock,
    config: () => current().config,
    requests,
    grants,
    factors,
  });
  const reconcile = createReconciler({
    db,
    inTransaction,
    config: () => current().config,
    connectors,
    onError: (resource, error) =>
      log.error("reconciliation failed", {
        resource,
        error: error instanceof Error ? error.message : String(error),
      }),
  });
  // Break-glass drills (issue 16, src/drills/NOTES.md): the whole path as system:drill.
  const drills = createDrillService({
    db,
    clock,
    inTransaction,
    current,
    grants,
    box,
    signals,
    delivery: auditDelivery,
    activated: (grant) => listener.activated(grant),
    enforcerKind: enforcer.kind,
    sshKeyPair: () => generateEd25519KeyPair("firebreak-drill"),
  });
  let drillTimer: NodeJS.Timeout | null = null;
  // Sealed emergency kits (src/emergency/NOTES.md): made, rotated before their end and at start.
  const emergency = createEmergencyService({
    db,
    inTransaction,
    clock,
    config: () => current().config,
    connectors,
    signingKey: () => signingKey.current(),
  });
  let emergencyTimer: NodeJS.Timeout | null = null;
  let reconcileTimer: NodeJS.Timeout | null = null;
  let signalUpkeepTimer: NodeJS.Timeout | null = null;
  const notifier = createNotifier({
    config: () => current().config,
    secret: (ref: string) => resolveSecret(ref as never, env),
    clock,
    inTransaction,
    suggestedApprovers: (event) => suggestedApprovers(current().config, event),
  });
  bus.subscribe((event) => notifier.handle(event));

  // The feed's cursor is the head as it is now, before the index reads the grants: a change
  // committed in between is re-derived by the feed, never lost.
  await feed.start();
  await access.rebuild();
  const replicas = createReplicaService({
    db,
    inTransaction,
    now: () => clock.now(),
    feed,
    version: VERSION,
    configDigest: () => current().digest,
    reload: (actor) => runtime.reload(actor),
    log,
  });
  /** Why this replica cannot vouch for its live views, or null when it can. */
  const notCurrent = (): string | null => {
    const status = feed.status();
    return status.current ? null : status.reason;
  };

  const eventStreams = createEventStreams({
    audit,
    // Live views follow every replica's commits.
    bus: feed,
    visible: createEventVisibility({ db, config: () => current().config }),
    recheckMs: options.eventStreamRecheckMs,
  });
  let ready = false;
  const routes = [
    ...createSystemRoutes({
      databaseReachable: () => pingDatabase(db),
      runtime,
      ready: () => ready,
      notCurrent,
    }),
    ...createReplicaRoutes({ replicas }),
    ...createUserRoutes({ users }),
    ...createIdentityRoutes({ oidc, sessions, config: () => current().config }),
    ...createRequestRoutes({ requests: requestActions }),
    ...createFactorRoutes({ factors }),
    ...createGrantRoutes({ clock, grants }),
    ...createSessionRoutes({ views: createSessionViews({ grants, sessions: gatewaySessions }) }),
    // A replica that cannot confirm it is current answers every access check with deny.
    ...createDecisionRoutes({
      clock,
      decisions,
      access: () => (notCurrent() === null ? access.current() : denyingIndex),
    }),
    ...createZoneRoutes({ current, signals }),
    ...createDrillRoutes({ drills }),
    ...createSshRoutes({ hosts: createSshHostService({ ssh, current }) }),
    ...createSegmentationRoutes({
      clock,
      config: () => current().config,
      policy: () => current().policy,
      desired: () => enforcement.service.desired(),
      sourceZoneOf: (address) => current().sourceZoneOf(address),
    }),
    ...enforcement.routes,
    ...createSignalRoutes({ signals }),
    ...createAuditRoutes({
      audit,
      anchor,
      transcripts: gatewaySessions,
      streams: eventStreams,
      // The stream keeps the credential it was opened with and asks again whether it still holds.
      recheckCredential: (request) => {
        const { token } = presentedCredential(request, identitySettings(current().config));
        return async () => {
          try {
            return await users.authenticate(token);
          } catch (error) {
            if (isFirebreakError(error) && error.code === "UNAUTHENTICATED") return null;
            throw error;
          }
        };
      },
    }),
    ...createDeliveryRoutes({
      delivery: auditDelivery,
      checkpointer,
      signingKey: () => signingKey.current(),
    }),
    ...createEmergencyRoutes({ emergency }),
    ...createMetricsRoutes({
      metrics,
      token: () => {
        const ref = current().config.server?.metricsToken;
        return ref ? resolveSecret(ref, env) : null;
      },
    }),
  ];
  const http: FastifyInstance = createHttpServer({
    routes,
    // X-Forwarded-For is believed only from configured proxies; the list follows config reloads.
    trustProxy: (address: string) => isTrustedProxy(current().config.server?.trustedProxies ?? [], address),
    version: VERSION,
    log,
    // A bearer token, or the console's session cookie (with its CSRF check on state-changing methods).
    authenticate: async (request) =>
      users.authenticate(presentedCredential(request, identitySettings(current().config)).token),
  });
  registerConsole(http);

  return {
    http,
    db,
    clock,
    services: {
      users,
      signals,
      requests,
      grants,
      audit,
      scheduler,
      runtime,
      reconcile,
      connectors,
      factors,
      enforcement: enforcement.service,
      auditDelivery,
      checkpointer,
      metrics,
      gatewaySessions,
      heldSessions,
      emergency,
      drills,
      gateways,
      replicas,
      feed,
      /** "A grant became active / ended" on any replica (gateways subscribe to cut their sessions). */
      grantChanges: follower,
    },
    access: () => access.current(),
    /** Bootstraps the first administrator, records the configuration, finishes due work, listens. */
    async start(listen: { host: string; port: number } | null) {
      // Before anything is appended: a chain cut back behind its anchor is not served on.
      await anchor.checkAtStart().catch(async (error: unknown) => {
        await handle.close();
        throw error;
      });
      const admin = await users.bootstrapAdmin();
      await runtime.recordStartup();
      await enforcement.start();
      await auditDelivery.start();
      checkpoints.start();
      // A drill a dead process left mid-way is closed now, before crash recovery would re-issue it.
      await drills.recover().catch(logError("abandoned drills could not be closed"));
      await scheduler.start();
      const gatewayAddresses = await gateways.start();
      await reconcile();
      await checkTargets();
      // Every start may follow downtime in which a kit was opened: rotate them all (README).
      await emergency.afterDowntime().catch(logError("emergency kits could not be rotated at start"));
      emergencyTimer = setInterval(() => {
        emergency.rotateDue().catch(logError("emergency kits could not be rotated"));
      }, EMERGENCY_INTERVAL_MS);
      emergencyTimer.unref();
      reconcileTimer = setInterval(() => {
        reconcile().catch(() => {});
      }, RECONCILE_INTERVAL_MS);
      reconcileTimer.unref();
      signalUpkeepTimer = setInterval(() => {
        signals.maintain().catch(logError("refused signals could not be recorded"));
      }, SIGNAL_UPKEEP_INTERVAL_MS);
      signalUpkeepTimer.unref();
      drillTimer = setInterval(() => {
        drills.tick().catch(logError("the drill schedule could not be read"));
      }, DRILL_INTERVAL_MS);
      drillTimer.unref();
      ready = true;
      let address: string | null = null;
      if (listen) address = await http.listen(listen);
      await replicas.start(address);
      return { admin, address, gateway: gatewayAddresses };
    },
    async reload(actor: string) {
      return runtime.reload(actor);
    },
    async stop() {
      ready = false;
      if (reconcileTimer) clearInterval(reconcileTimer);
      if (emergencyTimer) clearInterval(emergencyTimer);
      if (signalUpkeepTimer) clearInterval(signalUpkeepTimer);
      if (drillTimer) clearInterval(drillTimer);
      // Live streams never end on their own; the server could not close while one is open.
      eventStreams.closeAll("the server is shutting down; reconnect to resume");
      await gateways.stop();
      await http.close();
      // Refusals counted since the last summary are recorded before the final checkpoint.
      await signals.maintain(true).catch(logError("refused signals could not be recorded"));
      await scheduler.stop();
      await replicas.stop();
      await enforcement.stop();
      await notifier.drain();
      // The final checkpoint signs everything written, and the sinks get a few seconds to take it.
      await checkpoints.stop();
      await auditDelivery.flush(SHUTDOWN_FLUSH_MS).catch(logError("audit sinks could not be flushed"));
      await auditDelivery.stop();
      metrics.close();
      await feed.stop();
      await Promise.all(Object.values(connectors).map((c) => c.close()));
      await handle.close();
    },
  };
}
export type App = Awaited<ReturnType<typeof createApp>>;
