import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CredentialView } from "../api/grants.schema.js";

/** A credential as `POST /v1/grants/{id}/credential` replies with it. */
type Credential = Omit<CredentialView, "state">;

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: "inherit", env });
    child.on("error", (error) =>
      reject(new Error(`cannot start ${command}: ${(error as NodeJS.ErrnoException).code ?? "error"}`)),
    );
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/**
 * Starts the client for a credential without printing the secret: it goes into a 0600 file in a
 * private temporary directory (psql's passfile, mysql's option file, ssh's certificate) that is
 * removed when the client exits.
 */
export async function connectWith(
  credentials: Credential[],
  options: { resource?: string; identity: string; login?: string },
): Promise<number> {
  const usable = credentials.filter(
    (c) => c.secret !== null && (!options.resource || c.resource === options.resource),
  );
  if (usable.length === 0)
    throw new Error("this grant has no credential to connect with (or it was already shown once)");
  if (usable.length > 1)
    throw new Error(
      `the grant has several credentials; choose one with --resource (${usable.map((c) => c.resource).join(", ")})`,
    );
  const credential = usable[0] as Credential;
  const d = credential.detail as {
    username?: string;
    host?: string;
    port?: number;
    database?: string;
    principals?: string[];
  };
  const dir = await mkdtemp(join(tmpdir(), "firebreak-connect-"));
  try {
    const secretFile = join(dir, "secret");
    switch (credential.connector) {
      case "postgres": {
        const escapePass = (v: string) => v.replace(/([\\:])/g, "\\$1");
        await writeFile(
          secretFile,
          `${escapePass(String(d.host))}:${d.port}:*:${escapePass(String(d.username))}:${escapePass(credential.secret as string)}\n`,
          { mode: 0o600 },
        );
        return await run("psql", [], {
          ...process.env,
          PGHOST: d.host,
          PGPORT: String(d.port),
          PGUSER: d.username,
          PGDATABASE: d.database,
          PGPASSFILE: secretFile,
        });
      }
      case "mariadb": {
        const quote = (v: string) => `"${v.replace(/(["\\])/g, "\\$1")}"`;
        await writeFile(
          secretFile,
          `[client]\nhost=${d.host}\nport=${d.port}\nuser=${quote(String(d.username))}\npassword=${quote(credential.secret as string)}\n`,
          { mode: 0o600 },
        );
        return await run(
          "mysql",
          [`--defaults-extra-file=${secretFile}`, ...(d.database ? [String(d.database)] : [])],
          process.env,
        );
      }
      case "ssh": {
        const certificate = join(dir, "id-cert.pub");
        await writeFile(certificate, `${credential.secret}\n`, { mode: 0o600 });
        const [host, port] = String(d.host ?? "").split(/:(?=\d+$)/);
        const login = options.login ?? d.principals?.[0];
        if (!host || !login)
          throw new Error(
            "the SSH credential names no host or login; pass --login and check the resource's address",
          );
        return await run(
          "ssh",
          [
            "-i",
            options.identity,
            "-o",
            `CertificateFile=${certificate}`,
            ...(port ? ["-p", port] : []),
            "--",
            `${login}@${host}`,
          ],
          process.env,
        );
      }
      default:
        throw new Error(
          `'firebreak connect' does not know how to connect to a ${credential.connector} resource`,
        );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
