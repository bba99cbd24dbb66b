import type { SinkRecord } from "../analyst-view.js";

/**
 * The exported public shape (exactly what the hash covers, so `firebreak audit verify --file`
 * checks a file sink's lines), followed by three derived members the hash does not cover:
 * `severity`, `links` to the console, and `related` (the request behind a grant, looked up for
 * events that recorded only ids).
 */
export function jsonObject(record: SinkRecord): Record<string, unknown> {
  const object: Record<string, unknown> = { ...record.event, severity: record.severity };
  if (Object.keys(record.view.links).length > 0) object.links = record.view.links;
  if (record.related) object.related = record.related;
  return object;
}
