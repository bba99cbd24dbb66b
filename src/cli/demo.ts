import { verifyReply } from "../api/audit.schema.js";
import { grantViewSchema, reviewsReply } from "../api/grants.schema.js";
import { requestViewSchema } from "../api/requests.schema.js";
import { incidentReply } from "../api/system.schema.js";
import { issuedTokenReply } from "../api/users.schema.js";
import type { Client } from "./client.js";

const DEMO_ZONE = "payments-db";
const DEMO_ROLE = "admin";

/**
 * The 2 a.m. story against a running server loaded with examples/firebreak.yaml: an incident
 * opens, an on-call SRE asks for admin on the payments database, a lead approves, the SRE
 * activates, the grant expires by itself, and the use waits for review. Every step is narrated
 * and lands in the audit chain, which is verified at the end.
 */
export async function runDemo(options: { client: Client; json: boolean; stepDelayMs: number }) {
  const admin = options.client;
  const say = (text: string) => {
    if (!options.json) process.stdout.write(`${text}\n`);
  };
  const pause = () => new Promise((r) => setTimeout(r, options.stepDelayMs));
  const steps: { step: string; detail: unknown }[] = [];
  const record = (step: string, detail: unknown) => steps.push({ step, detail });

  const { createClient } = await import("./client.js");
  const as = async (user: string) => {
    const { token } = await admin.post(`/v1/users/${user}/tokens`, {}, issuedTokenReply);
    return createClient({ url: admin.url, token });
  };

  say("02:03  PagerDuty wakes alice (SRE on call): payments are failing, the database is refusing writes.");
  const incidentId = `demo-${Date.now().toString(36)}`;
  await admin.post(
    "/v1/incidents",
    {
      id: incidentId,
      zone: DEMO_ZONE,
      severity: 2,
      title: "payments-db refusing writes",
      status: "open",
    },
    incidentReply,
  );
  record("incident.opened", { id: incidentId, zone: DEMO_ZONE, severity: 2 });
  say(`       Incident ${incidentId} (severity 2) is open in zone ${DEMO_ZONE}.`);
  await pause();

  const alice = await as("alice");
  const carol = await as("carol");
  const erin = await as("erin");

  say(
    `02:05  alice holds no admin rights anywhere. She asks for '${DEMO_ROLE}' on ${DEMO_ZONE} for 20 seconds (a demo-sized window).`,
  );
  const request = await alice.post(
    "/v1/requests",
    {
      zone: DEMO_ZONE,
      role: DEMO_ROLE,
      duration: "20s",
      reason: "payments-db refuses writes; need to clear a stuck replication slot",
      ticket: "INC-4711",
    },
    requestViewSchema,
  );
  record("request.created", request);
  say(`       ${request.id}: ${request.state}; ${request.next}`);
  await pause();

  say("02:06  alice tries to approve her own request. Firebreak refuses:");
  try {
    await alice.post(`/v1/requests/${request.id}/approve`, {}, requestViewSchema);
  } catch (error) {
    say(`       ${(error as Error).message} [${(error as { code?: string }).code}]`);
    record("self-approval.refused", { code: (error as { code?: string }).code });
  }
  await pause();

  say("02:07  carol (payments lead) approves.");
  const approved = await carol.post(
    `/v1/requests/${request.id}/approve`,
    { comment: "go; keep it to the slot" },
    requestViewSchema,
  );
  record("request.approved", approved);
  say(`       ${approved.id}: ${approved.state}; ${approved.next}`);
  await pause();

  say("02:08  alice activates. The grant exists from now until its window ends.");
  const grant = await alice.post(`/v1/requests/${request.id}/activate`, {}, grantViewSchema);
  record("grant.activated", grant);
  say(`       ${grant.id}: ${grant.state}, ${grant.secondsLeft}s left (until ${grant.endsAt})`);

  say("02:09  alice fixes the database. Nobody revokes anything by hand: the window simply ends.");
  let current = grant;
  for (let waited = 0; waited < 60 && current.state === "active"; waited++) {
    await new Promise((r) => setTimeout(r, 1000));
    current = await alice.get(`/v1/grants/${grant.id}`, grantViewSchema);
    if (current.state === "active" && current.secondsLeft % 5 === 0)
      say(`       ${current.secondsLeft}s left`);
  }
  record("grant.expired", current);
  say(`02:10  ${current.id}: ${current.state}; revocation ${current.revocation.status}.`);
  await pause();

  say(
    `02:11  The use now waits for review by someone who neither asked nor approved (erin, security): due ${current.review.dueAt ?? "-"}.`,
  );
  const { reviews } = await erin.get("/v1/reviews", reviewsReply);
  record("review.pending", { reviews: reviews.map((r) => r.id) });
  say(`       reviews due: ${reviews.map((r) => r.id).join(", ") || "none"}`);

  await admin.post(
    "/v1/incidents",
    {
      id: incidentId,
      zone: DEMO_ZONE,
      severity: 2,
      title: "payments-db refusing writes",
      status: "resolved",
    },
    incidentReply,
  );
  record("incident.resolved", { id: incidentId });
  const verify = await admin.get("/v1/audit/verify", verifyReply);
  record("audit.verified", verify);
  say(
    `02:12  Incident resolved. Audit chain: ${verify.ok ? "OK" : "BROKEN"}, ${verify.count} events. See them with 'firebreak audit tail'.`,
  );
  if (options.json) process.stdout.write(`${JSON.stringify({ steps }, null, 2)}\n`);
}
