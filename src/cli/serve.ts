import { FirebreakError, isFirebreakError } from "../errors.js";
import { holdServeLock } from "../replicas/single-process.js";
import { createApp } from "../server/app.js";

/** `host:port`, `:port` (all interfaces) or `[v6]:port`. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([A-Za-z0-9.-]*)):([0-9]{1,5})$/.exec(listen);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port < 0 || port > 65535) {
    throw new FirebreakError(
      "VALIDATION_FAILED",
      `--listen takes host:port or :port, not '${listen.slice(0, 100)}'`,
    );
  }
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}

function logLine(level: string, message: string, fields: Record<string, unknown> = {}) {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
}

/** Runs the server until SIGTERM or SIGINT; SIGHUP reloads the configuration. */
export async function runServe(options: {
  config: string;
  db: string;
  listen: string;
  json: boolean;
  masterKeyFile: string;
  production?: boolean;
  enforcer?: "log" | "agent" | "nftables";
  netns?: string;
}) {
  const listen = parseListen(options.listen);
  const log = {
    info: (m: string, f?: Record<string, unknown>) => logLine("info", m, f),
    error: (m: string, f?: Record<string, unknown>) => logLine("error", m, f),
  };
  // SQLite serves from one process: a second serve on the same file is refused, never diverges.
  const postgres = /^postgres(ql)?:\/\//.test(options.db);
  const lock = postgres ? null : holdServeLock(options.db.replace(/^sqlite:/, ""));
  const app = await createApp({
    configPath: options.config,
    databaseUrl: options.db,
    masterKeyFile: options.masterKeyFile,
    production: options.production ?? false,
    log,
    enforcement: { kind: options.enforcer ?? "log", netns: options.netns ?? null },
  });
  const { admin, address } = await app.start(listen);
  const shown = address?.replace("0.0.0.0", "127.0.0.1") ?? "";
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ listening: shown, config: options.config, admin })}\n`);
  } else {
    process.stdout.write(`Firebreak is serving ${options.config} at ${shown}\n`);
    if (admin) {
      process.stdout.write(
        `\nFirst start: created administrator '${admin.user}'. Its token is shown this once:\n\n  export FIREBREAK_URL=${shown}\n  export FIREBREAK_TOKEN=${admin.token}\n\nOpen ${shown} to sign in to the web console with this token, or in another terminal (after\n'npm link', which puts firebreak on your PATH; or run node dist/cli/main.js): firebreak demo\n\n`,
      );
    }
  }
  process.on("SIGHUP", () => {
    app
      .reload("system:sighup")
      .then((result) =>
        log.info(result.changed ? "configuration applied" : "configuration unchanged", {
          digest: result.digest,
        }),
      )
      .catch((error) =>
        log.error("configuration refused; the running one is kept", {
          error: isFirebreakError(error) ? error.message : "unreadable file",
        }),
      );
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  log.info("stopping");
  await app.stop();
  lock?.release();
}
