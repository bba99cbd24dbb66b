import { VERSION } from "../../version.js";
import { type SinkRecord, summaryOf } from "../analyst-view.js";
import { OCSF_SEVERITY } from "../severity.js";

/**
 * OCSF-shaped JSON (schema 1.1): each event type mapped to the class an analyst's tooling files it
 * under, with `type_uid = class_uid * 100 + activity_id`. Firebreak's own fields that OCSF has no
 * attribute for (purpose, ticket, signals, the chain's hashes) go under `unmapped`, so nothing is lost.
 */

export const OCSF_VERSION = "1.1.0";

interface ClassMapping {
  classUid: number;
  className: string;
  activityId: number;
  activityName: string;
  /** 1 Success, 2 Failure. */
  statusId?: 1 | 2;
}

const CATEGORY_NAMES: Record<number, string> = {
  0: "Uncategorized",
  2: "Findings",
  3: "Identity & Access Management",
  6: "Application Activity",
};

const ENTITY = (activityId: number, activityName: string, statusId?: 1 | 2): ClassMapping => ({
  classUid: 3004,
  className: "Entity Management",
  activityId,
  activityName,
  ...(statusId ? { statusId } : {}),
});
const ACCESS = (activityId: 1 | 2): ClassMapping => ({
  classUid: 3005,
  className: "User Access Management",
  activityId,
  activityName: activityId === 1 ? "Assign Privileges" : "Revoke Privileges",
  statusId: 1,
});

/** The OCSF class for each event type Firebreak writes; anything else is a Base Event (0). */
export const OCSF_CLASSES: Record<string, ClassMapping> = {
  // Access elevations: privileges assigned to and taken from a user.
  "grant.activated": ACCESS(1),
  "credential.issued": ACCESS(1),
  "grant.expired": ACCESS(2),
  "grant.revoked": ACCESS(2),
  "credential.revoked": ACCESS(2),
  "revocation.verified": ACCESS(2),
  // A policy decision refusing privileges.
  "decision.denied": {
    classUid: 3003,
    className: "Authorize Session",
    activityId: 1,
    activityName: "Assign Privileges",
    statusId: 2,
  },
  // Requests, approvals, reviews and network paths: managed entities created and changed.
  "request.created": ENTITY(1, "Create"),
  "request.approved": ENTITY(3, "Update", 1),
  "approval.recorded": ENTITY(3, "Update", 1),
  "request.denied": ENTITY(3, "Update", 2),
  "request.cancelled": ENTITY(3, "Update"),
  "request.lapsed": ENTITY(3, "Update"),
  "review.completed": ENTITY(3, "Update"),
  "flow.opened": ENTITY(1, "Create"),
  "flow.closed": ENTITY(4, "Delete"),
  // Accounts and their tokens.
  "user.created": { classUid: 3001, className: "Account Change", activityId: 1, activityName: "Create" },
  "token.issued": { classUid: 3001, className: "Account Change", activityId: 99, activityName: "Other" },
  // Findings: Firebreak's alerts and incidents from outside.
  "alert.raised": {
    classUid: 2004,
    className: "Detection Finding",
    activityId: 1,
    activityName: "Create",
  },
  "incident.opened": { classUid: 2005, className: "Incident Finding", activityId: 1, activityName: "Create" },
  "incident.updated": {
    classUid: 2005,
    className: "Incident Finding",
    activityId: 2,
    activityName: "Update",
  },
  "incident.resolved": {
    classUid: 2005,
    className: "Incident Finding",
    activityId: 3,
    activityName: "Close",
  },
  // Reads through the API: a credential shown (or refused), a webhook refused.
  "credential.delivered": {
    classUid: 6003,
    className: "API Activity",
    activityId: 2,
    activityName: "Read",
    statusId: 1,
  },
  "credential.delivery_refused": {
    classUid: 6003,
    className: "API Activity",
    activityId: 2,
    activityName: "Read",
    statusId: 2,
  },
  "signal.rejected": {
    classUid: 6003,
    className: "API Activity",
    activityId: 1,
    activityName: "Create",
    statusId: 2,
  },
  "config.applied": {
    classUid: 6002,
    className: "Application Lifecycle",
    activityId: 8,
    activityName: "Update",
  },
  "config.refused": {
    classUid: 6002,
    className: "Application Lifecycle",
    activityId: 8,
    activityName: "Update",
    statusId: 2,
  },
};

const BASE_EVENT: ClassMapping = {
  classUid: 0,
  className: "Base Event",
  activityId: 99,
  activityName: "Other",
};

export function ocsfClassOf(type: string): ClassMapping {
  return OCSF_CLASSES[type] ?? BASE_EVENT;
}

const compact = (object: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(object).filter(([, value]) => value !== null && value !== undefined));

export function ocsfObject(record: SinkRecord): Record<string, unknown> {
  const { event, view } = record;
  const mapping = ocsfClassOf(event.type);
  const categoryUid = Math.floor(mapping.classUid / 1000);
  const severity = OCSF_SEVERITY[record.severity];
  const object: Record<string, unknown> = {
    class_uid: mapping.classUid,
    class_name: mapping.className,
    category_uid: categoryUid,
    category_name: CATEGORY_NAMES[categoryUid] ?? "Uncategorized",
    activity_id: mapping.activityId,
    activity_name: mapping.activityName,
    type_uid: mapping.classUid * 100 + mapping.activityId,
    type_name: `${mapping.className}: ${mapping.activityName}`,
    time: Date.parse(event.time),
    severity_id: severity.id,
    severity: severity.name,
    message: summaryOf(record),
    metadata: {
      version: OCSF_VERSION,
      uid: event.id,
      sequence: event.seq,
      event_code: event.type,
      log_name: "firebreak-audit",
      correlation_uid: view.grant ?? view.request ?? event.subject ?? undefined,
      product: { name: "Firebreak", vendor_name: "Firebreak", version: VERSION },
    },
    actor: { user: { name: event.actor, type: event.actor.startsWith("system:") ? "System" : "User" } },
  };
  if (mapping.statusId) {
    object.status_id = mapping.statusId;
    object.status = mapping.statusId === 1 ? "Success" : "Failure";
  }
  if (view.reasons.length > 0) object.status_detail = view.reasons.join("; ");
  if (view.user) object.user = { name: view.user };
  if (view.clientAddress) object.src_endpoint = compact({ ip: view.clientAddress, zone: view.sourceZone });
  else if (view.sourceZone) object.src_endpoint = { zone: view.sourceZone };
  const resource = compact({
    name: view.resource ?? view.zone,
    type: view.resource ? "resource" : "zone",
    group: view.zone ? { name: view.zone } : undefined,
  });
  if (mapping.classUid === 3005 || mapping.classUid === 3003) {
    if (view.role) object.privileges = [view.role];
    if (view.zone || view.resource) object.resources = [resource];
  }
  if (mapping.classUid === 3004) {
    object.entity = compact({
      uid: event.subject ?? undefined,
      name: event.subject ?? undefined,
      type: event.type.startsWith("flow.")
        ? "Network Path"
        : event.type.startsWith("review.")
          ? "Review"
          : "Access Request",
    });
    if (view.zone || view.resource) object.resources = [resource];
  }
  if (mapping.classUid === 2004 || mapping.classUid === 2005) {
    object.finding_info = compact({
      uid: event.subject ?? event.id,
      title:
        typeof event.context.alert === "string" ? event.context.alert : (event.context.title ?? event.type),
      desc: typeof event.context.message === "string" ? event.context.message : undefined,
      types: [event.type],
    });
  }
  if (mapping.classUid === 6003) object.api = { operation: event.type };
  object.unmapped = compact({
    zone: view.zone,
    resource: view.resource,
    request: view.request,
    grant: view.grant,
    role: view.role,
    policy: view.policy,
    purpose: view.purpose,
    ticket: view.ticket,
    approvers: view.approvers.length > 0 ? view.approvers : undefined,
    factors: view.factors.length > 0 ? view.factors : undefined,
    signals: view.signals ?? undefined,
    source_zone: view.sourceZone,
    client_address: view.clientAddress,
    links: Object.keys(view.links).length > 0 ? view.links : undefined,
    context: event.context,
    related: record.related ?? undefined,
    prev_hash: event.prevHash,
    hash: event.hash,
  });
  return JSON.parse(JSON.stringify(object)) as Record<string, unknown>;
}
