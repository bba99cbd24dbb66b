import { EventEmitter } from "node:events";
import type { AuditEvent } from "./audit-event.js";

/**
 * Committed audit events, published in-process after their transaction commits, for live views
 * (`/v1/events`, `audit tail --follow`) and for the in-memory access index. Never before commit:
 * a rolled-back change must not be seen.
 */
export function createEventBus() {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    publish(events: readonly AuditEvent[]) {
      for (const event of events) emitter.emit("event", event);
    },
    subscribe(listener: (event: AuditEvent) => void): () => void {
      emitter.on("event", listener);
      return () => emitter.off("event", listener);
    },
  };
}
export type EventBus = ReturnType<typeof createEventBus>;
