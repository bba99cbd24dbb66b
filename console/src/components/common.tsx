import { type ReactNode, useEffect, useRef } from "react";
import { describeError } from "../api/client";
import { formatRemaining, speakRemaining, useNow } from "../lib/time";

let firstPage = true;

/**
 * The page's heading: sets the document title and, after a navigation (not on first load), moves
 * focus to the heading so keyboard and screen-reader users start at the new page's top.
 */
export function PageTitle({ children, title }: { children: ReactNode; title: string }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Firebreak`;
    if (firstPage) firstPage = false;
    else heading.current?.focus({ preventScroll: false });
  }, [title]);
  return (
    <h1 ref={heading} tabIndex={-1} className="page-title">
      {children}
    </h1>
  );
}

export function ErrorNotice({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) {
  if (error === null || error === undefined) return null;
  return (
    <div className="notice notice-error" role="alert">
      <span>{describeError(error)}</span>
      {onDismiss ? (
        <button type="button" className="link-button" onClick={onDismiss}>
          Dismiss
        </button>
      ) : null}
    </div>
  );
}

export function Notice({ children, tone = "info" }: { children: ReactNode; tone?: "info" | "ok" | "warn" }) {
  return (
    <div className={`notice notice-${tone}`} role="status">
      {children}
    </div>
  );
}

const STATE_TONES: Record<string, string> = {
  pending: "warn",
  approved: "info",
  active: "live",
  denied: "bad",
  cancelled: "muted",
  lapsed: "muted",
  expired: "muted",
  revoked: "bad",
  due: "warn",
  accepted: "ok",
  flagged: "bad",
  verified: "ok",
  failed: "bad",
};

export function StateBadge({ state, label }: { state: string; label?: string }) {
  return <span className={`badge badge-${STATE_TONES[state] ?? "muted"}`}>{label ?? state}</span>;
}

/** Time left until `deadline` (epoch ms on this machine's clock), ticking every second. */
export function Countdown({
  deadline,
  expiredLabel = "ending…",
}: {
  deadline: number;
  expiredLabel?: string;
}) {
  const now = useNow(1000);
  const left = deadline - now;
  if (left <= 0) return <span className="countdown countdown-done">{expiredLabel}</span>;
  // The ticking digits are hidden from screen readers, which get the time in words instead.
  return (
    <span className={`countdown${left < 60_000 ? " countdown-soon" : ""}`}>
      <time dateTime={`PT${Math.ceil(left / 1000)}S`}>
        <span aria-hidden="true">{formatRemaining(left)}</span>
        <span className="visually-hidden">{speakRemaining(left)}</span>
      </time>
    </span>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

/** `group:sre` → `group sre`, as people read it. */
export function PrincipalRefs({ refs }: { refs: readonly string[] }) {
  return (
    <>
      {refs.map((ref, index) => (
        <span key={ref}>
          {index > 0 ? " or " : ""}
          <code>{ref}</code>
        </span>
      ))}
    </>
  );
}

/** A definition list of facts; a `Fact` with nothing to say is left out. */
export function Facts({ children }: { children: ReactNode }) {
  return <dl className="facts">{children}</dl>;
}

export function Fact({ label, children }: { label: string; children?: ReactNode }) {
  if (children === null || children === undefined || children === "" || children === false) return null;
  return (
    <div className="fact">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}
