import * as AsciinemaPlayer from "asciinema-player";
import "asciinema-player/dist/bundle/asciinema-player.css";
import { useEffect, useRef, useState } from "react";
import { toAsciicast } from "../../../src/gateway/ssh/cast.js";
import type { TranscriptRecordView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { ErrorNotice } from "./common";

/** Records read for one recording; a longer one is played up to here and says so. */
const MAX_RECORDS = 20_000;

/**
 * Plays an SSH session's shell recording with asciinema-player, bundled with the console (same
 * origin, no inline script, so the console's CSP holds). The asciicast is built in the browser
 * from the session's transcript records (src/gateway/ssh/cast.ts, the same code the CLI's
 * `--cast` uses); the terminal text is rendered by the player as terminal output, never as markup.
 */
export function SshPlayer({ sessionId }: { sessionId: string }) {
  const { api } = useSignedIn();
  const container = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<unknown>(null);
  const [state, setState] = useState<"loading" | "none" | "ready" | "partial">("loading");

  useEffect(() => {
    let disposed = false;
    let player: { dispose(): void } | null = null;
    (async () => {
      const records: TranscriptRecordView[] = [];
      let afterSeq = 0;
      for (;;) {
        const page = await api.get<{ records: TranscriptRecordView[]; nextAfterSeq: number | null }>(
          `/v1/sessions/${encodeURIComponent(sessionId)}/transcript`,
          { afterSeq, limit: 1000 },
        );
        records.push(...page.records);
        if (page.nextAfterSeq === null || records.length >= MAX_RECORDS) {
          if (page.nextAfterSeq !== null) setState("partial");
          break;
        }
        afterSeq = page.nextAfterSeq;
      }
      if (disposed) return;
      const cast = toAsciicast(records.map((r) => ({ ...r, time: Date.parse(r.time) })));
      if (cast === null || !container.current) {
        setState("none");
        return;
      }
      player = AsciinemaPlayer.create({ data: cast }, container.current, { fit: "width", idleTimeLimit: 2 });
      setState((s) => (s === "partial" ? s : "ready"));
    })().catch(setError);
    return () => {
      disposed = true;
      player?.dispose();
    };
  }, [api, sessionId]);

  return (
    <div className="ssh-player" data-player={sessionId} data-player-state={state}>
      <ErrorNotice error={error} />
      {state === "partial" ? (
        <p className="muted">The recording is long: its first {MAX_RECORDS} records are played.</p>
      ) : null}
      {state === "none" ? (
        <p className="muted">This session opened no shell (see its commands above).</p>
      ) : null}
      <div ref={container} />
    </div>
  );
}
