import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { FirebreakError } from "../errors.js";
import type { SecretRef } from "./schema.js";

/** Larger than any key or token; a bigger file is the wrong file. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * Resolves `env:NAME` or `file:/path` to the secret it names. Throws CONFIG_INVALID naming the
 * reference (never the value) when it is malformed, unset, unreadable or empty. A file's trailing
 * newline is removed because editors and `echo` add one that is never part of the secret.
 */
export function resolveSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): string {
  if (ref.startsWith("env:")) {
    const name = ref.slice("env:".length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw malformed();
    const value = env[name];
    if (value === undefined) throw invalid(ref, `needs the environment variable ${name}, which is not set`);
    if (value === "") throw invalid(ref, `needs the environment variable ${name}, which is empty`);
    return value;
  }
  if (ref.startsWith("file:/")) {
    const value = stripTrailingNewline(readSecretFile(ref, ref.slice("file:".length)));
    if (value === "") throw invalid(ref, "names an empty file");
    return value;
  }
  throw malformed();
}

/** A malformed reference may be a secret pasted in its place, so it is not repeated. */
function malformed(): FirebreakError {
  return new FirebreakError(
    "CONFIG_INVALID",
    "a secret reference must be 'env:NAME' or 'file:/absolute/path'; the value given is neither (not shown, as it may be a secret)",
  );
}

function readSecretFile(ref: string, path: string): string {
  let descriptor: number;
  try {
    descriptor = openSync(path, "r");
  } catch (error) {
    throw invalid(ref, describe(error));
  }
  try {
    const info = fstatSync(descriptor);
    if (!info.isFile()) throw invalid(ref, "does not name a regular file");
    if (info.size > MAX_SECRET_FILE_BYTES) {
      throw invalid(ref, `names a file larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    }
    const buffer = Buffer.alloc(info.size);
    let read = 0;
    while (read < buffer.length) {
      const count = readSync(descriptor, buffer, read, buffer.length - read, read);
      if (count === 0) break;
      read += count;
    }
    return buffer.subarray(0, read).toString("utf8");
  } catch (error) {
    if (error instanceof FirebreakError) throw error;
    throw invalid(ref, describe(error));
  } finally {
    closeSync(descriptor);
  }
}

function stripTrailingNewline(text: string): string {
  if (text.endsWith("\r\n")) return text.slice(0, -2);
  if (text.endsWith("\n")) return text.slice(0, -1);
  return text;
}

function describe(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case "ENOENT":
      return "names a file that does not exist";
    case "EACCES":
    case "EPERM":
      return "names a file Firebreak may not read";
    case "EISDIR":
      return "does not name a regular file";
    default:
      return "names a file that cannot be read";
  }
}

function invalid(ref: string, problem: string): FirebreakError {
  return new FirebreakError("CONFIG_INVALID", `secret reference '${ref}' ${problem}`, { ref });
}
