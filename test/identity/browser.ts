/**
 * Just enough of a browser for sign-in flows: a cookie jar (by host and path, honouring Max-Age),
 * fetch with manual redirects, and submitting the HTML forms an identity provider renders.
 */

interface StoredCookie {
  value: string;
  path: string;
  expiresAt: number;
  httpOnly: boolean;
}

export class CookieJar {
  // Cookies are per host, not per port (RFC 6265), as in a real browser.
  private readonly byHost = new Map<string, Map<string, StoredCookie>>();

  store(url: URL, setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = "", ...attributes] = line.split(";").map((part) => part.trim());
      const equals = pair.indexOf("=");
      if (equals <= 0) continue;
      const name = pair.slice(0, equals);
      const value = pair.slice(equals + 1);
      let path = "/";
      let expiresAt = Number.POSITIVE_INFINITY;
      let httpOnly = false;
      for (const attribute of attributes) {
        const [key = "", raw = ""] = attribute.split("=");
        if (key.toLowerCase() === "path") path = raw || "/";
        if (key.toLowerCase() === "max-age") expiresAt = Date.now() + Number(raw) * 1000;
        if (key.toLowerCase() === "expires" && Date.parse(raw) <= Date.now()) expiresAt = 0;
        if (key.toLowerCase() === "httponly") httpOnly = true;
      }
      const host = this.byHost.get(url.hostname) ?? new Map<string, StoredCookie>();
      this.byHost.set(url.hostname, host);
      const key = `${path}\0${name}`;
      if (expiresAt <= Date.now()) host.delete(key);
      else host.set(key, { value, path, expiresAt, httpOnly });
    }
  }

  header(url: URL): string {
    const host = this.byHost.get(url.hostname);
    if (!host) return "";
    const matching = [...host.entries()]
      .filter(([, cookie]) => cookie.expiresAt > Date.now() && url.pathname.startsWith(cookie.path))
      // Longer paths first, as browsers send them.
      .sort(([, a], [, b]) => b.path.length - a.path.length);
    return matching.map(([key, cookie]) => `${key.split("\0")[1]}=${cookie.value}`).join("; ");
  }

  get(url: URL, name: string): string | undefined {
    const host = this.byHost.get(url.hostname);
    for (const [key, cookie] of host ?? []) {
      if (key.split("\0")[1] === name && cookie.expiresAt > Date.now()) return cookie.value;
    }
    return undefined;
  }

  attributes(url: URL, name: string): { httpOnly: boolean; path: string } | undefined {
    for (const [key, cookie] of this.byHost.get(url.hostname) ?? []) {
      if (key.split("\0")[1] === name) return { httpOnly: cookie.httpOnly, path: cookie.path };
    }
    return undefined;
  }

  /** A copy, to replay later what the browser held at this moment. */
  clone(): CookieJar {
    const copy = new CookieJar();
    for (const [host, cookies] of this.byHost) copy.byHost.set(host, new Map(cookies));
    return copy;
  }
}

export interface Page {
  url: URL;
  status: number;
  headers: Headers;
  body: string;
}

/** One request with the jar's cookies; redirects are not followed. */
export async function request(
  jar: CookieJar,
  url: URL,
  init: {
    method?: string;
    form?: Record<string, string>;
    json?: unknown;
    headers?: Record<string, string>;
  } = {},
): Promise<Page> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  let body: string | undefined;
  if (init.form) {
    body = new URLSearchParams(init.form).toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  } else if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers["content-type"] = "application/json";
  }
  const response = await fetch(url, {
    method: init.method ?? (body ? "POST" : "GET"),
    headers,
    body,
    redirect: "manual",
  });
  jar.store(url, response.headers.getSetCookie());
  return { url, status: response.status, headers: response.headers, body: await response.text() };
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", "#x27": "'" };
const decode = (text: string) =>
  text.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_, name: string) => ENTITIES[name] ?? "");

function attributesOf(tag: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const match of tag.matchAll(/([A-Za-z_:][\w:.-]*)\s*=\s*"([^"]*)"/g)) {
    attributes[(match[1] ?? "").toLowerCase()] = decode(match[2] ?? "");
  }
  return attributes;
}

export interface Form {
  id: string | undefined;
  action: string;
  method: string;
  fields: Record<string, string>;
}

/** Every `<form>` of a page with its `<input>` fields. */
export function formsOf(html: string): Form[] {
  const forms: Form[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attributes = attributesOf(match[1] ?? "");
    const fields: Record<string, string> = {};
    for (const input of (match[2] ?? "").matchAll(/<input\b([\s\S]*?)\/?>/gi)) {
      const inputAttributes = attributesOf(input[1] ?? "");
      if (inputAttributes.name) fields[inputAttributes.name] = inputAttributes.value ?? "";
    }
    forms.push({
      id: attributes.id,
      action: attributes.action ?? "",
      method: (attributes.method ?? "get").toUpperCase(),
      fields,
    });
  }
  return forms;
}

export interface DriveOptions {
  /** The account to sign in as on the provider's login page. */
  login: string;
  /** Stop before requesting a URL for which this is true (it is returned, not requested). */
  stopAt?: (url: URL) => boolean;
  /** Extra or replaced fields for the device confirmation form (e.g. `{ abort: "yes" }`). */
  confirmFields?: Record<string, string>;
}

export type DriveResult = { stoppedAt: URL } | { page: Page };

/**
 * Follows redirects and fills in the provider's pages like a person would: the login form with the
 * account, the consent form, the device confirmation form. Ends at `stopAt`, or at a page with no
 * form to fill (the device flow's success page, or an error page).
 */
export async function drive(jar: CookieJar, start: URL, options: DriveOptions): Promise<DriveResult> {
  let next: { url: URL; form?: Record<string, string> } = { url: start };
  for (let hop = 0; hop < 40; hop++) {
    if (options.stopAt?.(next.url)) return { stoppedAt: next.url };
    const page = await request(jar, next.url, next.form ? { form: next.form } : {});
    const location = page.headers.get("location");
    if (page.status >= 300 && page.status < 400 && location) {
      next = { url: new URL(location, page.url) };
      continue;
    }
    const form = formsOf(page.body).find((candidate) => candidate.method === "POST");
    // The device code entry page asks for a code the person would have to type: nothing to submit.
    if (page.status >= 400 || !form || form.fields.user_code === "") return { page };
    const fields = { ...form.fields };
    if (fields.prompt === "login") Object.assign(fields, { login: options.login, password: "any password" });
    if (form.id === "op.deviceConfirmForm") Object.assign(fields, options.confirmFields ?? {});
    next = { url: new URL(form.action, page.url), form: fields };
  }
  throw new Error(`sign-in did not finish within 40 steps (last: ${next.url.href})`);
}
