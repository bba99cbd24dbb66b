import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";
import { type FollowedStream, followEvents } from "../support/events.js";
import { CookieJar } from "./browser.js";
import { type IdentityWorld, startIdentityWorld } from "./support.js";

const HOUR = 3_600_000;
/** The server re-checks open streams this often here; the bound below leaves it many chances. */
const RECHECK_MS = 100;
const CLOSE_WITHIN_MS = 3_000;

/**
 * The console follows `/v1/events` with its session cookie. The stream must end when that session
 * does: at logout, when an administrator revokes the user's sessions, and when it expires (which no
 * event announces, so the periodic re-check finds it, on the server's injected clock).
 */
describe.each(DIALECTS)("a console session's live stream on %s", (dialect) => {
  let w: IdentityWorld;

  beforeAll(async () => {
    w = await startIdentityWorld(dialect, { eventStreamRecheckMs: RECHECK_MS });
    w.provider.accounts.set("sub-olivia", { preferred_username: "olivia", groups: ["sre"] });
  });
  afterAll(async () => {
    const unknownFailures = w?.t.serverErrors.filter((line) => line.startsWith("request failed")) ?? [];
    await w?.close();
    expect(unknownFailures, "the server answered 500 INTERNAL").toEqual([]);
  });

  /** Signs olivia in through the provider and opens the stream with the session cookie alone. */
  async function signedInStream(): Promise<{ jar: CookieJar; stream: FollowedStream }> {
    const jar = new CookieJar();
    await w.signIn(jar, "sub-olivia");
    const cookie = jar.header(w.url("/v1/events"));
    expect(cookie).toMatch(/firebreak_session=/);
    return { jar, stream: await followEvents(w.base.origin, { cookie }) };
  }

  /** Shows the stream is open and carrying olivia's events: a token minted for her is streamed to her. */
  async function stillStreaming(stream: FollowedStream) {
    const head = (await w.t.auditEvents()).at(-1)?.seq ?? 0;
    expectStatus(await w.t.call("POST", "/v1/users/olivia/tokens"), 201);
    await stream.waitFor((e) => e.type === "token.issued" && e.context.user === "olivia" && e.seq > head);
  }

  async function refusedWith(jar: CookieJar) {
    const again = await fetch(w.url("/v1/events"), { headers: { cookie: jar.header(w.url("/v1/events")) } });
    expect(again.status).toBe(401);
    await again.body?.cancel();
  }

  it("ends at logout", async () => {
    const { jar, stream } = await signedInStream();
    try {
      await stillStreaming(stream);
      const stolen = jar.clone();
      const out = await w.api(jar, "POST", "/v1/auth/logout", {
        json: {},
        csrf: jar.get(w.base, "firebreak_csrf") ?? "",
      });
      expect(out.status).toBe(200);
      await stream.waitForEnd(CLOSE_WITHIN_MS);
      expect(stream.comments).toContain("closed: the credential that opened this stream is no longer valid");
      await refusedWith(stolen);
    } finally {
      stream.stop();
    }
  });

  it("ends when an administrator revokes the user's sessions", async () => {
    const { jar, stream } = await signedInStream();
    try {
      await stillStreaming(stream);
      expectStatus(await w.t.call("POST", "/v1/users/olivia/tokens/revoke"), 200);
      await stream.waitForEnd(CLOSE_WITHIN_MS);
      await refusedWith(jar);
    } finally {
      stream.stop();
    }
  });

  it("ends when the session expires", async () => {
    const { jar, stream } = await signedInStream();
    try {
      await stillStreaming(stream);
      w.t.clock.advance(12 * HOUR + 1);
      await stream.waitForEnd(CLOSE_WITHIN_MS);
      expect(stream.comments).toContain("closed: the credential that opened this stream is no longer valid");
      await refusedWith(jar);
    } finally {
      stream.stop();
    }
  });
});
