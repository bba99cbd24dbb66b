import { useCallback, useEffect, useRef, useState } from "react";
import type { GrantView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { useLiveUpdates } from "./live";
import { formatDurationMs } from "./time";

/** An active grant with its end on this machine's clock (from the server's seconds left). */
export interface OpenGrant {
  grant: GrantView;
  deadline: number;
}

/** A grant that closed while the page watched, kept on screen for a while so the close is seen. */
export interface ClosedGrant {
  grant: GrantView;
  how: "expired" | "revoked";
  shownUntil: number;
}

/** How long a closed grant stays drawn as closed on the map. */
export const CLOSED_VISIBLE_MS = 20_000;

export function toOpenGrant(grant: GrantView, receivedAt = Date.now()): OpenGrant {
  return { grant, deadline: receivedAt + grant.secondsLeft * 1000 };
}

const GRANT_EVENTS = /^(grant\.|flow\.|credential\.revoked|revocation\.)/;

/**
 * The grants open right now (those the caller may see: all for administrators and auditors), kept
 * current by live events or polling, plus the ones that closed while watching. `announcement` is
 * a sentence for a polite live region: what opened or closed last.
 */
export function useOpenGrants() {
  const { api } = useSignedIn();
  const [open, setOpen] = useState<OpenGrant[] | null>(null);
  const [closed, setClosed] = useState<ClosedGrant[]>([]);
  const [announcement, setAnnouncement] = useState("");
  const [error, setError] = useState<unknown>(null);
  const known = useRef<Map<string, GrantView> | null>(null);
  const loading = useRef(false);
  const again = useRef(false);

  const reload = useCallback(async () => {
    if (loading.current) {
      again.current = true;
      return;
    }
    loading.current = true;
    try {
      do {
        again.current = false;
        const receivedAt = Date.now();
        const { grants } = await api.get<{ grants: GrantView[] }>("/v1/grants", { active: true, limit: 500 });
        const next = new Map(grants.map((g) => [g.id, g]));
        const previous = known.current;
        const messages: string[] = [];
        if (previous) {
          for (const grant of grants) {
            if (!previous.has(grant.id)) {
              messages.push(
                `Opened: ${grant.user} has ${grant.role} in ${grant.zone} for ${formatDurationMs(grant.secondsLeft * 1000)}.`,
              );
            }
          }
          const gone = [...previous.values()].filter((g) => !next.has(g.id));
          const closedNow = await Promise.all(
            gone.map((g) =>
              api.get<GrantView>(`/v1/grants/${g.id}`).catch(() => ({ ...g, state: "expired" })),
            ),
          );
          const now = Date.now();
          const added: ClosedGrant[] = closedNow.map((g) => ({
            grant: g,
            how: g.state === "revoked" ? "revoked" : "expired",
            shownUntil: now + CLOSED_VISIBLE_MS,
          }));
          for (const g of added) {
            messages.push(
              `Closed: ${g.grant.user}'s ${g.grant.role} in ${g.grant.zone} ${g.how === "revoked" ? "was revoked" : "expired"}.`,
            );
          }
          if (added.length > 0) setClosed((list) => [...list.filter((c) => c.shownUntil > now), ...added]);
        }
        known.current = next;
        setOpen(grants.map((g) => toOpenGrant(g, receivedAt)));
        if (messages.length > 0) setAnnouncement(messages.join(" "));
        setError(null);
      } while (again.current);
    } catch (failure) {
      setError(failure);
    } finally {
      loading.current = false;
    }
  }, [api]);

  useEffect(() => {
    void reload();
  }, [reload]);
  useLiveUpdates(
    (event) => GRANT_EVENTS.test(event.type),
    () => void reload(),
    5000,
  );

  // A grant whose time is up is closed by the server's scheduler within a moment: look again then.
  useEffect(() => {
    if (!open || open.length === 0) return;
    const soonest = Math.min(...open.map((o) => o.deadline));
    const timer = setTimeout(() => void reload(), Math.max(soonest - Date.now(), 0) + 1200);
    return () => clearTimeout(timer);
  }, [open, reload]);

  // Closed grants leave the map when their time on screen is over.
  useEffect(() => {
    if (closed.length === 0) return;
    const soonest = Math.min(...closed.map((c) => c.shownUntil));
    const timer = setTimeout(
      () => setClosed((list) => list.filter((c) => c.shownUntil > Date.now())),
      Math.max(soonest - Date.now(), 0) + 50,
    );
    return () => clearTimeout(timer);
  }, [closed]);

  return { open, closed, announcement, error, reload };
}
