import { describe, expect, it } from "vitest";
import { parseCookies, serializeCookie } from "./cookies.js";

describe("cookies", () => {
  it("parses a Cookie header, first occurrence winning, ignoring what Firebreak never writes", () => {
    const cookies = parseCookies(
      'a=1; firebreak_session=fbk_0123.abc; firebreak_session=second; bad name=x; q="quoted"; odd=va;lue; =nothing; __Host-x=y',
    );
    expect(Object.fromEntries(cookies)).toEqual({
      a: "1",
      firebreak_session: "fbk_0123.abc",
      q: "quoted",
      odd: "va",
      "__Host-x": "y",
    });
    expect(parseCookies(undefined).size).toBe(0);
    expect(parseCookies(["a=1", "b=2"]).get("b")).toBe("2");
    expect(parseCookies("x=<script>").has("x")).toBe(false);
  });

  it("writes Set-Cookie values and deletes with Max-Age=0", () => {
    expect(
      serializeCookie("s", "v.1", {
        maxAge: 60,
        path: "/",
        httpOnly: true,
        secure: true,
        sameSite: "Strict",
      }),
    ).toBe("s=v.1; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Strict");
    expect(
      serializeCookie("s", "", { maxAge: 0, path: "/cb", httpOnly: false, secure: false, sameSite: "Lax" }),
    ).toBe("s=; Path=/cb; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax");
    expect(() =>
      serializeCookie("s", "a;b", { maxAge: 1, path: "/", httpOnly: true, secure: false, sameSite: "Lax" }),
    ).toThrow();
  });
});
