import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DIALECTS } from "../support/databases.js";
import { CookieJar } from "./browser.js";
import { type IdentityWorld, startIdentityWorld } from "./support.js";

/**
 * A provider account whose username is an existing user's name in another case (`Alice` for the
 * directory's `alice`, `Olivia` for an OIDC user `olivia`) is refused at its first sign-in, not
 * mapped onto that user: the provider may hold two different people under the two spellings.
 */
describe.each(DIALECTS)("OIDC user names that differ only in case on %s", (dialect) => {
  let w: IdentityWorld;

  beforeEach(async () => {
    w = await startIdentityWorld(dialect);
    w.provider.accounts.set("sub-olivia", { preferred_username: "olivia", groups: ["sre"] });
    w.provider.accounts.set("sub-big-alice", { preferred_username: "Alice", groups: ["Payments Leads"] });
    w.provider.accounts.set("sub-big-olivia", { preferred_username: "OLIVIA", groups: ["Payments Leads"] });
  });

  afterEach(async () => {
    const unknownFailures = w.t.serverErrors.filter((line) => line.startsWith("request failed"));
    await w.close();
    expect(unknownFailures, "the server answered 500 INTERNAL").toEqual([]);
  });

  it("refuses a first sign-in as a directory or OIDC user's name in another case, and audits it", async () => {
    await w.signIn(new CookieJar(), "sub-olivia");
    for (const login of ["sub-big-alice", "sub-big-olivia"]) {
      const jar = new CookieJar();
      const callback = await w.signInUntilCallback(jar, login);
      const refused = await w.api(jar, "GET", callback.pathname + callback.search);
      expect({ status: refused.status, code: refused.json?.error?.code }).toEqual({
        status: 403,
        code: "SIGN_IN_REFUSED",
      });
      expect(refused.headers.getSetCookie().join("\n")).not.toContain("firebreak_session=fbk_");
    }
    const names = (await w.t.app.db.selectFrom("users").select("name").execute()).map((u) => u.name);
    expect(names.filter((name) => ["alice", "olivia"].includes(name.toLowerCase())).sort()).toEqual([
      "olivia",
    ]);
    const refusals = (await w.t.auditEvents()).filter((e) => e.type === "user.sign_in_refused");
    expect(refusals.map((e) => [e.context.subject, e.context.reason])).toEqual([
      [
        "sub-big-alice",
        "the user name 'Alice' differs only in case from the existing user 'alice'; an administrator must resolve the conflict",
      ],
      [
        "sub-big-olivia",
        "the user name 'OLIVIA' differs only in case from the existing user 'olivia'; an administrator must resolve the conflict",
      ],
    ]);
  });
});
