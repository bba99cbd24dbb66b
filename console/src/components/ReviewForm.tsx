import { useId, useState } from "react";
import type { GrantView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { ErrorNotice } from "./common";

/** Accept or flag a break-glass use, with notes (the server refuses the requester and its approvers). */
export function ReviewForm({ grant, onDone }: { grant: GrantView; onDone: (grant: GrantView) => void }) {
  const { api } = useSignedIn();
  const id = useId();
  const [notes, setNotes] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const review = async (verdict: "accept" | "flag") => {
    if (!notes.trim()) {
      setError(new Error("Write what you checked: the notes are part of the audit record."));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onDone(await api.post<GrantView>(`/v1/grants/${grant.id}/review`, { verdict, notes: notes.trim() }));
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="stack">
      <div className="field">
        <label htmlFor={`${id}-notes`}>Review notes</label>
        <textarea
          id={`${id}-notes`}
          rows={3}
          maxLength={4000}
          required
          aria-describedby={`${id}-help`}
          value={notes}
          onChange={(event) => setNotes(event.target.value)}
        />
        <p id={`${id}-help`} className="hint">
          What you checked: the ticket, the commands run, whether the access matched the reason.
        </p>
      </div>
      <ErrorNotice error={error} />
      <div className="actions">
        <button
          type="button"
          className="button primary"
          disabled={busy}
          onClick={() => void review("accept")}
        >
          Accept
        </button>
        <button type="button" className="button danger" disabled={busy} onClick={() => void review("flag")}>
          Flag for follow-up
        </button>
      </div>
    </div>
  );
}
