import { FirebreakError } from "../errors.js";
import { type EnforcerKind, enforcerSettings } from "./settings.js";

/**
 * Checks the options given to an enforcer (`serve --enforcer KIND --netns …`) against what that
 * enforcer declares, before anything starts: an option it does not take, or a value it would
 * refuse later, is CONFIG_INVALID naming the option. Options left unset are not given.
 */
export function checkEnforcerOptions(kind: EnforcerKind, options: Record<string, unknown>): void {
  const given = Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined && value !== null),
  );
  const parsed = enforcerSettings[kind].options.safeParse(given);
  if (parsed.success) return;
  const problems = parsed.error.issues.map((issue) => {
    if (issue.code === "unrecognized_keys")
      return `the '${kind}' enforcer takes no ${issue.keys.map((key) => `'${key}'`).join(", ")}`;
    return `'${issue.path.join(".")}': expected ${issue.message}`;
  });
  throw new FirebreakError("CONFIG_INVALID", problems.join("; "));
}
