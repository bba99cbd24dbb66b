import type { Api } from "../api/client";
import type { Explanation, PolicyRequirements, ZoneView } from "../api/types";

/**
 * What the request form offers: the zones and resources some break-glass policy could elevate this
 * viewer on, with the roles it could give there. Eligibility is the server's answer, not a guess
 * made here: `POST /v1/decisions` evaluates every policy of a zone that covers the asked role and
 * says NOT_ELIGIBLE for the ones whose `eligible` list leaves the viewer out. Conditions that can
 * change before the request is sent (an incident, the ticket, the source zone) do not hide a
 * target; the preview explains them.
 */

export interface Offer {
  kind: "zone" | "resource";
  name: string;
  zone: string;
  type: string | null;
  roles: string[];
}

interface PolicyAnswer {
  policy: string;
  zone: string;
  eligible: boolean | null;
  requires: PolicyRequirements;
}

type Probe = { zone: string } | { resource: string };

async function explainFor(api: Api, target: Probe, role: string): Promise<Explanation> {
  const reply = await api.post<{ explanation: Explanation }>("/v1/decisions", {
    ...target,
    role,
    reason: "",
  });
  return reply.explanation;
}

/** Records what one explanation says about each policy of the zone (eligible only when evaluated). */
function collect(answers: Map<string, PolicyAnswer>, zone: string, explanation: Explanation) {
  for (const entry of explanation.policies) {
    const known = answers.get(entry.policy);
    const eligible = entry.applies ? !entry.unmet.some((reason) => reason.code === "NOT_ELIGIBLE") : null;
    if (!known || (known.eligible === null && eligible !== null)) {
      answers.set(entry.policy, { policy: entry.policy, zone, eligible, requires: entry.requires });
    }
  }
}

/** The targets the viewer could ask for, zones first, in configuration order. */
export async function requestOffers(api: Api, zones: ZoneView[]): Promise<Offer[]> {
  const answers = new Map<string, PolicyAnswer>();
  const covered = zones.filter((zone) => zone.policies.some((p) => p.roles.length > 0));
  // One question per zone first; it evaluates the policies that cover that role.
  await Promise.all(
    covered.map(async (zone) => {
      const role = zone.policies.find((p) => p.roles.length > 0)?.roles[0] as string;
      collect(answers, zone.name, await explainFor(api, { zone: zone.name }, role));
    }),
  );
  // Then one for each policy the first question could not evaluate (another role, or resources only).
  await Promise.all(
    [...answers.values()]
      .filter((answer) => answer.eligible === null)
      .map(async (answer) => {
        const role = answer.requires.roles[0];
        if (role === undefined) return;
        const resource = answer.requires.resources?.[0];
        const probe: Probe = resource ? { resource } : { zone: answer.zone };
        collect(answers, answer.zone, await explainFor(api, probe, role));
      }),
  );

  const mine = [...answers.values()].filter((answer) => answer.eligible === true);
  const offers: Offer[] = [];
  for (const zone of zones) {
    const policies = mine.filter((answer) => answer.zone === zone.name);
    const zoneWide = policies.filter((answer) => answer.requires.resources === null);
    const zoneRoles = [...new Set(zoneWide.flatMap((answer) => answer.requires.roles))];
    if (zoneRoles.length > 0) {
      offers.push({ kind: "zone", name: zone.name, zone: zone.name, type: null, roles: zoneRoles });
    }
  }
  for (const zone of zones) {
    const policies = mine.filter((answer) => answer.zone === zone.name);
    for (const resource of zone.resources) {
      const granted = new Set(
        policies
          .filter(
            (answer) =>
              answer.requires.resources === null || answer.requires.resources.includes(resource.name),
          )
          .flatMap((answer) => answer.requires.roles),
      );
      const roles = resource.roles.filter((role) => granted.has(role));
      if (roles.length > 0) {
        offers.push({ kind: "resource", name: resource.name, zone: zone.name, type: resource.type, roles });
      }
    }
  }
  return offers;
}

/** `zone:NAME` / `resource:NAME`, the value the form's select uses. */
export const offerKey = (offer: Pick<Offer, "kind" | "name">) => `${offer.kind}:${offer.name}`;
