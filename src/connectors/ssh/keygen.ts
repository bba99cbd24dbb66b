import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FirebreakError } from "../../errors.js";

/**
 * The one way this connector runs OpenSSH's `ssh-keygen`: `execFile` with an argument array, so no
 * shell ever parses a zone, principal or key; a fixed environment (`LC_ALL=C` so the output we
 * read is stable, nothing that could point ssh-keygen at an agent or a helper); stdin closed so a
 * prompt can never hang; a timeout so a stuck child cannot hold a grant's activation forever.
 */
export interface KeygenResult {
  code: number;
  stdout: string;
  stderr: string;
}

const KEYGEN_TIMEOUT_MS = 15_000;

/** Runs `ssh-keygen args…` and resolves with its exit code; a non-zero exit does not reject. */
export function runKeygen(args: readonly string[]): Promise<KeygenResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      "ssh-keygen",
      [...args],
      {
        shell: false,
        timeout: KEYGEN_TIMEOUT_MS,
        maxBuffer: 1024 * 1024,
        env: { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", LC_ALL: "C" },
        windowsHide: true,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") {
          // Not an exit status: ssh-keygen missing (ENOENT), killed by the timeout, output too large.
          reject(withCause(new FirebreakError("CONNECTOR_FAILED", "ssh-keygen could not be run"), error));
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end();
  });
}

/**
 * Runs ssh-keygen and throws CONNECTOR_FAILED unless it exits 0. The client-facing message names
 * only what we were doing; ssh-keygen's own words stay in `cause` for the server's logs.
 */
export async function keygenOrFail(what: string, args: readonly string[]): Promise<KeygenResult> {
  const result = await runKeygen(args);
  if (result.code !== 0) {
    throw withCause(
      new FirebreakError("CONNECTOR_FAILED", `ssh-keygen failed to ${what}`),
      new Error(`ssh-keygen exited ${result.code}: ${result.stderr.trim().slice(0, 500)}`),
    );
  }
  return result;
}

function withCause(error: FirebreakError, cause: unknown): FirebreakError {
  Object.defineProperty(error, "cause", { value: cause, enumerable: false, configurable: true });
  return error;
}

/**
 * Runs `work` with a fresh directory only the current user can enter (0700), removed afterwards
 * whatever happens. Every file a signing step needs (the CA's private key above all) lives here
 * and nowhere else.
 */
export async function withPrivateDirectory<T>(work: (directory: string) => Promise<T>): Promise<T> {
  const directory = await mkdtemp(join(tmpdir(), "firebreak-ssh-"));
  try {
    await chmod(directory, 0o700);
    return await work(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Writes a file that must not exist yet, readable by its owner only. */
export async function writePrivateFile(path: string, content: string | Buffer): Promise<void> {
  await writeFile(path, content, { mode: 0o600, flag: "wx" });
}

/**
 * Runs `work` with `privateKey` in a 0600 file inside `directory`, deleting the file as soon as
 * `work` settles (before the directory itself goes), so the key spends the least possible time
 * on disk.
 */
export async function withPrivateKeyFile<T>(
  directory: string,
  privateKey: string,
  work: (path: string) => Promise<T>,
): Promise<T> {
  const path = join(directory, "ca");
  await writePrivateFile(path, privateKey.endsWith("\n") ? privateKey : `${privateKey}\n`);
  try {
    return await work(path);
  } finally {
    await rm(path, { force: true });
  }
}

/**
 * Generates an Ed25519 key pair with `ssh-keygen -t ed25519 -N ''` and returns the OpenSSH
 * private key text and the public key line. The caller has validated `comment` (it becomes the
 * key's comment, e.g. `firebreak-payments-db-ca`).
 */
export async function generateEd25519KeyPair(
  comment: string,
): Promise<{ privateKey: string; publicKey: string }> {
  return withPrivateDirectory(async (directory) => {
    const path = join(directory, "key");
    await keygenOrFail("generate a key pair", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path]);
    const privateKey = await readFile(path, "utf8");
    const publicKey = (await readFile(`${path}.pub`, "utf8")).trim();
    await rm(path, { force: true });
    return { privateKey, publicKey };
  });
}
