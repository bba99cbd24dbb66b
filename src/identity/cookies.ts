/**
 * The little of RFC 6265 Firebreak needs: reading the `Cookie` header and writing `Set-Cookie`.
 * Names and values are restricted to what Firebreak itself writes (base64url and `.`), so nothing
 * needs quoting and a hostile header can only produce cookies that fail to authenticate.
 */

const NAME = /^[A-Za-z0-9_-]+$|^__(Host|Secure)-[A-Za-z0-9_-]+$/;
const VALUE = /^[A-Za-z0-9._~-]*$/;
/** More cookies than this in one header is not a browser Firebreak talks to. */
const MAX_COOKIES = 100;

/** Parses a `Cookie` header. The first occurrence of a name wins (the browser sends the most specific path first). */
export function parseCookies(header: string | string[] | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  const text = Array.isArray(header) ? header.join("; ") : (header ?? "");
  for (const part of text.split(";").slice(0, MAX_COOKIES)) {
    const equals = part.indexOf("=");
    if (equals <= 0) continue;
    const name = part.slice(0, equals).trim();
    let value = part.slice(equals + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!NAME.test(name) || !VALUE.test(value) || cookies.has(name)) continue;
    cookies.set(name, value);
  }
  return cookies;
}

export interface CookieOptions {
  /** Seconds; 0 deletes the cookie. */
  maxAge: number;
  path: string;
  httpOnly: boolean;
  secure: boolean;
  sameSite: "Strict" | "Lax";
}

/** Formats one `Set-Cookie` header value. */
export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  if (!NAME.test(name)) throw new Error(`cookie name '${name}' is not one Firebreak writes`);
  if (!VALUE.test(value)) throw new Error(`cookie '${name}' has a value with characters that need quoting`);
  const parts = [
    `${name}=${value}`,
    `Path=${options.path}`,
    `Max-Age=${Math.max(0, Math.floor(options.maxAge))}`,
  ];
  if (options.maxAge <= 0) parts.push("Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  if (options.httpOnly) parts.push("HttpOnly");
  if (options.secure) parts.push("Secure");
  parts.push(`SameSite=${options.sameSite}`);
  return parts.join("; ");
}
