import { agentEnforcerSettings } from "../agent/agent.settings.js";
import { fileSinkSettings } from "../audit/sinks/file.settings.js";
import { splunkHecSinkSettings } from "../audit/sinks/splunk-hec.settings.js";
import { syslogSinkSettings } from "../audit/sinks/syslog.settings.js";
import { webhookSinkSettings } from "../audit/sinks/webhook.settings.js";
import { logResourceSettings } from "../connectors/log/log.settings.js";
import { mariadbResourceSettings } from "../connectors/mariadb/mariadb.settings.js";
import { postgresResourceSettings } from "../connectors/postgres/postgres.settings.js";
import { sshResourceSettings } from "../connectors/ssh/ssh.settings.js";
import { logEnforcerSettings } from "../enforcers/log/log.settings.js";
import { nftablesEnforcerSettings } from "../enforcers/nftables/nftables.settings.js";
import { alertmanagerSignalSettings } from "../signals/alertmanager.settings.js";
import { genericSignalSettings } from "../signals/generic.settings.js";
import { pagerdutySignalSettings } from "../signals/pagerduty.settings.js";
import type {
  EnforcerSettings,
  ResourceSettings,
  SignalSettings,
  SinkSettings,
} from "./settings-contract.js";

/**
 * The settings registries: one line per plug-in kind. They name the kinds (`ResourceType`,
 * `SinkType`, … are their keys), the configuration schema is built from them as discriminated
 * unions on `type`, and the implementation registries in `registry.ts` must cover the same keys.
 * Only settings files are imported here, never an implementation, so reading a configuration
 * loads no driver.
 */

const connectors = {
  postgres: postgresResourceSettings,
  mariadb: mariadbResourceSettings,
  ssh: sshResourceSettings,
} satisfies Record<string, ResourceSettings>;

/** Resource types, in the order `validate` lists them. */
export const resourceSettings = {
  log: logResourceSettings(connectors),
  ...connectors,
} satisfies Record<string, ResourceSettings>;

/**
 * Resource types the product names but no connector implements yet. The schema knows them so that
 * `validate` says so at the resource's `type`, rather than accepting a resource no grant could use.
 */
export const plannedResourceTypes = {
  http: "an HTTP service",
} as const;

export const sinkSettings = {
  syslog: syslogSinkSettings,
  file: fileSinkSettings,
  "splunk-hec": splunkHecSinkSettings,
  webhook: webhookSinkSettings,
} satisfies Record<string, SinkSettings>;

export const signalSettings = {
  alertmanager: alertmanagerSignalSettings,
  pagerduty: pagerdutySignalSettings,
  generic: genericSignalSettings,
} satisfies Record<string, SignalSettings>;

export const enforcerSettings = {
  log: logEnforcerSettings,
  agent: agentEnforcerSettings,
  nftables: nftablesEnforcerSettings,
} satisfies Record<string, EnforcerSettings>;

export type SignalSourceKind = keyof typeof signalSettings;
/** `log` records only; `agent`: agents enforce the published desired state; `nftables`: this server does. */
export type EnforcerKind = keyof typeof enforcerSettings;
