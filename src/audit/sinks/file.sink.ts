import { type FileHandle, mkdir, open, rename, unlink } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { type AuditSinkConfig, sinkOfType } from "../../config/schema.js";
import type { AuditSink, SinkDeps } from "../../plugins/contracts.js";
import { formatters } from "../formats/index.js";
import { SinkDeliveryError, throwIfAborted, toDeliveryError } from "./sink-error.js";

/**
 * Appends one line per event (JSON by default, the exported shape, so the file verifies offline)
 * and syncs the file before a batch counts as delivered. With `rotate`, a line that would take the
 * file past `size` first moves `path` to `path.1` (and `path.1` to `path.2`, … keeping `keep`).
 */
export function createFileSink(settings: AuditSinkConfig, deps: SinkDeps): AuditSink {
  const config = sinkOfType(settings, "file");
  const path = resolve(config.path);
  const format = formatters[config.format ?? "json"];
  const header = {
    facility: 10,
    hostname: deps.hostname,
    appName: config.appName ?? "firebreak",
    procId: deps.procId,
  };
  let handle: FileHandle | null = null;
  let size = 0;

  async function ensureOpen(): Promise<FileHandle> {
    if (handle) return handle;
    await mkdir(dirname(path), { recursive: true, mode: 0o750 });
    const opened = await open(path, "a", 0o640);
    size = (await opened.stat()).size;
    handle = opened;
    return opened;
  }

  async function rotate(): Promise<void> {
    const keep = config.rotate?.keep ?? 5;
    if (handle) {
      await handle.close();
      handle = null;
    }
    await unlink(`${path}.${keep}`).catch(ignoreMissing);
    for (let index = keep - 1; index >= 1; index--) {
      await rename(`${path}.${index}`, `${path}.${index + 1}`).catch(ignoreMissing);
    }
    await rename(path, `${path}.1`).catch(ignoreMissing);
  }

  return {
    kind: "file",
    target: `file:${path}`,
    async deliver(records, signal) {
      try {
        const limit = config.rotate?.size;
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        const flush = async () => {
          if (pending.length === 0) return;
          const file = await ensureOpen();
          await file.write(Buffer.concat(pending, pendingBytes));
          size += pendingBytes;
          pending = [];
          pendingBytes = 0;
        };
        for (const record of records) {
          throwIfAborted(signal);
          const line = Buffer.from(`${format(record, header).text.replace(/\r?\n/g, " ")}\n`, "utf8");
          await ensureOpen();
          if (limit !== undefined && size + pendingBytes > 0 && size + pendingBytes + line.length > limit) {
            await flush();
            await handle?.datasync();
            await rotate();
            await ensureOpen();
          }
          pending.push(line);
          pendingBytes += line.length;
        }
        await flush();
        await handle?.datasync();
      } catch (error) {
        // A failed write may have left part of a line: cut the file back to its last whole line,
        // so the retry appends whole lines only.
        if (handle) {
          await handle.truncate(size).catch(() => {});
          await handle.close().catch(() => {});
          handle = null;
        }
        throw error instanceof SinkDeliveryError ? error : toDeliveryError(error);
      }
    },
    async close() {
      if (handle) await handle.close();
      handle = null;
    },
  };
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
}
