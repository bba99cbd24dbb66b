import { NAME_PATTERN, type OidcConfig, USER_PATTERN } from "../config/schema.js";

/** Provider groups beyond this many are not looked at; no real account has that many that matter. */
const MAX_PROVIDER_GROUPS = 500;
const MAX_GROUP_LENGTH = 256;

/** Who the provider says signed in, mapped into Firebreak's terms. */
export interface ProviderIdentity {
  issuer: string;
  subject: string;
  /** The username claim's value when it is a valid Firebreak user name. */
  username: string | null;
  /** Firebreak groups: mapped through `groupMap`, or kept as reported when they are valid names. */
  groups: string[];
  /** Provider groups that were neither mapped nor valid names (kept for the audit record). */
  ignoredGroups: string[];
}

/**
 * A claim by name; when no claim has exactly that name, a dotted path into nested objects
 * (`realm_access.roles`). Exact names come first because namespaced claims are URLs full of dots.
 */
export function claimAt(claims: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  let current: unknown = claims;
  for (const segment of name.split(".")) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

/** Maps the provider's groups claim (a list, or one string) into Firebreak group names. */
export function mapGroups(
  value: unknown,
  groupMap: Record<string, string | string[]> | undefined,
): { groups: string[]; ignored: string[] } {
  const reported = (Array.isArray(value) ? value : typeof value === "string" ? [value] : [])
    .slice(0, MAX_PROVIDER_GROUPS)
    .filter((item): item is string => typeof item === "string" && item.length <= MAX_GROUP_LENGTH);
  const groups = new Set<string>();
  const ignored = new Set<string>();
  for (const group of reported) {
    const mapped = groupMap && Object.hasOwn(groupMap, group) ? groupMap[group] : undefined;
    if (mapped !== undefined) for (const name of Array.isArray(mapped) ? mapped : [mapped]) groups.add(name);
    else if (NAME_PATTERN.test(group)) groups.add(group);
    else ignored.add(group);
  }
  return { groups: [...groups].sort(), ignored: [...ignored].sort() };
}

/** Reads the identity out of validated ID token (and userinfo) claims. */
export function identityFromClaims(claims: Record<string, unknown>, oidc: OidcConfig): ProviderIdentity {
  const username = claimAt(claims, oidc.usernameClaim);
  const { groups, ignored } = mapGroups(claimAt(claims, oidc.groupsClaim), oidc.groupMap);
  return {
    issuer: String(claims.iss),
    subject: String(claims.sub),
    username: typeof username === "string" && USER_PATTERN.test(username) ? username : null,
    groups,
    ignoredGroups: ignored,
  };
}

/**
 * Why a provider identity may not sign in, or null when it may. The username only matters at the
 * first sign-in (`alreadyBound` false): afterwards the user is found by issuer and subject. Name
 * conflicts are checked against the database by the session service.
 */
export function signInRefusal(
  identity: ProviderIdentity,
  oidc: OidcConfig,
  alreadyBound: boolean,
): string | null {
  if (!alreadyBound && identity.username === null) {
    return `the provider's '${oidc.usernameClaim}' claim is missing or is not a valid user name (1-128 letters, digits, '.', '_', '@' or '-')`;
  }
  if (oidc.allowedGroups && !oidc.allowedGroups.some((group) => identity.groups.includes(group))) {
    return `sign-in is limited to members of ${oidc.allowedGroups.map((g) => `'${g}'`).join(", ")}`;
  }
  return null;
}
