/**
 * One error type for the whole program. Codes are stable UPPER_SNAKE strings that clients and
 * tests match on; messages are for people and may change. Driver and library messages never
 * become a FirebreakError message, so nothing internal reaches a client.
 */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  INVALID_DURATION: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  INVALID_STATE: 409,
  SELF_APPROVAL: 403,
  NOT_AN_APPROVER: 403,
  ALREADY_DECIDED: 409,
  POLICY_DENIED: 403,
  NO_POLICY: 403,
  DUPLICATE_GRANT: 409,
  // Drills (src/drills): one run of a drill at a time; a drill that waits while a real incident is open.
  DRILL_BUSY: 409,
  DRILL_DEFERRED: 409,
  FACTOR_REQUIRED: 403,
  FACTOR_INVALID: 403,
  FACTOR_REPLAYED: 403,
  FACTOR_NOT_ENROLLED: 409,
  REVIEW_NOT_ALLOWED: 403,
  OIDC_NOT_CONFIGURED: 404,
  OIDC_STATE_INVALID: 400,
  OIDC_SIGN_IN_FAILED: 401,
  OIDC_PROVIDER_UNAVAILABLE: 502,
  SIGN_IN_REFUSED: 403,
  DEVICE_FLOW_EXPIRED: 400,
  CSRF_REQUIRED: 403,
  ALREADY_DELIVERED: 409,
  CONFIG_INVALID: 422,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  SIGNAL_STALE: 401,
  SIGNAL_REPLAYED: 409,
  AUTO_APPROVAL_LAPSED: 403,
  CONNECTOR_FAILED: 502,
  RESOURCE_MISCONFIGURED: 503,
  UNAVAILABLE: 503,
  /** The audit chain no longer holds the checkpoint anchored outside the database. */
  AUDIT_ANCHOR_MISMATCH: 503,
  /** Emergency kits (src/emergency): a kit or share that cannot be used, offline or on import. */
  KIT_INVALID: 400,
  KIT_TAMPERED: 400,
  KIT_EXPIRED: 410,
  SHARE_INVALID: 400,
  SHARE_FOREIGN: 400,
  SHARE_DUPLICATE: 400,
  SHARES_TOO_FEW: 400,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class FirebreakError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = "FirebreakError";
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

/** Throws a FirebreakError with `code` unless `condition` holds. */
export function assert(
  condition: unknown,
  code: ErrorCode,
  message: string,
  details?: unknown,
): asserts condition {
  if (!condition) throw new FirebreakError(code, message, details);
}

export function isFirebreakError(error: unknown): error is FirebreakError {
  return error instanceof FirebreakError;
}
