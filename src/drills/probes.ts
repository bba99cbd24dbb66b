import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import pg from "pg";
import type { ResourceConfig } from "../config/schema.js";

/**
 * Logging in with a drill's credential and doing one harmless thing: `select 1` on PostgreSQL and
 * MariaDB, `true` over SSH. `login` resolves when it worked and throws a `ProbeRefused` when the
 * target said no (what the step after revocation wants to see); anything else (unreachable, a
 * timeout) throws an ordinary error, which proves nothing either way.
 */

export class ProbeRefused extends Error {}

export interface ProbeCredential {
  detail: Record<string, unknown>;
  secret: string | null;
  /** SSH: the private key whose public half the certificate (the secret) signs. */
  privateKey?: string;
}

const TIMEOUT_MS = 10_000;

const str = (value: unknown) => (typeof value === "string" ? value : undefined);
const num = (value: unknown) => (typeof value === "number" ? value : Number(value));

/** PostgreSQL error classes that mean "this login is not accepted" (28: invalid authorisation). */
function isPostgresRefusal(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return typeof code === "string" && (code.startsWith("28") || code === "3D000");
}

async function postgresProbe(credential: ProbeCredential): Promise<Record<string, unknown>> {
  const client = new pg.Client({
    host: str(credential.detail.host),
    port: num(credential.detail.port),
    user: str(credential.detail.username),
    password: credential.secret ?? "",
    database: str(credential.detail.database),
    connectionTimeoutMillis: TIMEOUT_MS,
    query_timeout: TIMEOUT_MS,
  });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    if (isPostgresRefusal(error)) throw new ProbeRefused("the database refused the login");
    throw new Error("the database could not be reached");
  }
  try {
    const result = await client.query("select 1 as one");
    return { action: "select 1", rows: result.rowCount };
  } finally {
    await client.end().catch(() => {});
  }
}

/** MariaDB's access-denied errors (1044, 1045, 1698) and an account past its expiry (1862). */
const MARIADB_REFUSALS = new Set([1044, 1045, 1698, 1862, 4151]);

async function mariadbProbe(credential: ProbeCredential): Promise<Record<string, unknown>> {
  let connection: mysql.Connection;
  try {
    connection = await mysql.createConnection({
      host: str(credential.detail.host),
      port: num(credential.detail.port),
      user: str(credential.detail.username),
      password: credential.secret ?? "",
      database: str(credential.detail.database),
      connectTimeout: TIMEOUT_MS,
    });
  } catch (error) {
    if (MARIADB_REFUSALS.has(Number((error as { errno?: number }).errno)))
      throw new ProbeRefused("the database refused the login");
    throw new Error("the database could not be reached");
  }
  connection.on("error", () => {});
  try {
    const [rows] = await connection.query("select 1 as one");
    return { action: "select 1", rows: Array.isArray(rows) ? rows.length : 0 };
  } finally {
    await connection.end().catch(() => {});
  }
}

/** Runs the system's `ssh` client with only the drill's key and certificate, as people would. */
async function sshProbe(credential: ProbeCredential, resource: ResourceConfig, role: string) {
  const address = resource.address ?? str(credential.detail.host);
  if (!address) throw new Error("the SSH resource has no address to log in to");
  const match = /^(.*?)(?::(\d+))?$/.exec(address);
  const host = (match?.[1] ?? address).replace(/^\[|\]$/g, "");
  const port = match?.[2] ?? "22";
  const principals = Array.isArray(credential.detail.principals) ? credential.detail.principals : [];
  const roleConfig = resource.roles[role] as { principals?: string[] } | undefined;
  const user = str(principals[0]) ?? roleConfig?.principals?.[0] ?? "firebreak-drill";
  if (!credential.privateKey || !credential.secret) throw new Error("no key and certificate to log in with");
  const directory = await mkdtemp(join(tmpdir(), "firebreak-drill-"));
  try {
    const key = join(directory, "id");
    await writeFile(key, credential.privateKey, { mode: 0o600 });
    await writeFile(`${key}-cert.pub`, credential.secret, { mode: 0o600 });
    const args = [
      "-F",
      "/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      `IdentityFile=${key}`,
      "-o",
      `CertificateFile=${key}-cert.pub`,
      // The drill proves the door, not the host's identity: it runs `true` and sends nothing.
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "ConnectTimeout=10",
      "-o",
      "LogLevel=ERROR",
      "-p",
      port,
      "-l",
      user,
      "--",
      host,
      "true",
    ];
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn("ssh", args, { stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      child.stderr.on("data", (chunk: Buffer) => {
        if (err.length < 4096) err += chunk.toString();
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS + 5_000);
      child.on("error", reject);
      child.on("close", (exit) => {
        clearTimeout(timer);
        resolve({ code: exit, stderr: err });
      });
    });
    if (code === 0) return { action: "true", user };
    if (/Permission denied/i.test(stderr)) throw new ProbeRefused("the host refused the certificate");
    throw new Error("the host could not be reached over SSH");
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Logs in to `resource` with the credential and does one harmless thing; what it did, on success. */
export async function login(
  resource: ResourceConfig,
  role: string,
  credential: ProbeCredential,
): Promise<Record<string, unknown>> {
  switch (resource.type) {
    case "postgres":
      return postgresProbe(credential);
    case "mariadb":
      return mariadbProbe(credential);
    case "ssh":
      return sshProbe(credential, resource, role);
    default:
      throw new Error(`a drill cannot log in to a '${resource.type}' resource`);
  }
}
