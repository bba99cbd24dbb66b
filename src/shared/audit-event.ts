/** An audit event in its public shape: what the API returns, export writes and the hash covers. */
export interface AuditEvent {
  seq: number;
  id: string;
  /** ISO 8601 with milliseconds, UTC (`2026-11-29T02:14:07.123Z`). */
  time: string;
  type: string;
  actor: string;
  zone: string | null;
  resource: string | null;
  subject: string | null;
  context: Record<string, unknown>;
  prevHash: string;
  hash: string;
}
