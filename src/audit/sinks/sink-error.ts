/**
 * A failed delivery. Its message is written for the sink's status (`firebreak audit sinks`, the
 * dead-letter list, alerts), so it is built only from codes and statuses, never from a receiver's
 * reply or a library message that could echo a URL, a token or a secret.
 */
export class SinkDeliveryError extends Error {
  constructor(
    message: string,
    /** How many leading records of the batch did arrive before the failure. */
    readonly delivered = 0,
  ) {
    super(message);
    this.name = "SinkDeliveryError";
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset by the receiver",
  EPIPE: "the receiver closed the connection",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host name not found",
  EAI_AGAIN: "host name lookup failed",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  ENOSPC: "no space left on device",
  EISDIR: "is a directory",
  EROFS: "read-only file system",
  EMSGSIZE: "message too long for a datagram",
  ABORT_ERR: "timed out",
};

/** A safe description of a transport failure: its errno or TLS code, never its message. */
export function describeTransportError(error: unknown): string {
  if (error instanceof SinkDeliveryError) return error.message;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (ERRNO_TEXT[code]) return `${ERRNO_TEXT[code]} (${code})`;
    if (/^[A-Z0-9_]{3,64}$/.test(code)) {
      return code.includes("CERT") || code.includes("SELF_SIGNED") || code.startsWith("ERR_TLS")
        ? `TLS verification failed (${code})`
        : `failed (${code})`;
    }
  }
  if ((error as { name?: unknown } | null)?.name === "AbortError") return "timed out";
  return "failed";
}

/** A SinkDeliveryError for `error`, keeping `delivered` when it already is one. */
export function toDeliveryError(error: unknown, delivered = 0): SinkDeliveryError {
  if (error instanceof SinkDeliveryError) return error;
  return new SinkDeliveryError(describeTransportError(error), delivered);
}

/** Throws a timeout-shaped SinkDeliveryError when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal, delivered = 0): void {
  if (signal.aborted) throw new SinkDeliveryError("timed out", delivered);
}
