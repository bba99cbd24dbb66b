import { type ReactNode, useCallback, useEffect, useState } from "react";
import type { GrantView, RequestView } from "../api/types";
import { matchesPrincipal, useSession, useSignedIn } from "../auth/session";
import { useLiveStatus, useLiveUpdates } from "../lib/live";
import { Link, useLocation } from "../router";

interface NavItem {
  href: string;
  label: string;
  count?: number;
  /** Highlighted for these path prefixes too. */
  also?: string[];
}

/** How many pending requests wait for this person's approval, and how many reviews are due. */
function useWorkCounts() {
  const { api, principal } = useSignedIn();
  const [counts, setCounts] = useState({ approvals: 0, reviews: 0 });
  const refresh = useCallback(() => {
    Promise.all([
      api.get<{ requests: RequestView[] }>("/v1/requests", { state: "pending", limit: 500 }),
      api.get<{ reviews: GrantView[] }>("/v1/reviews", { due: true }),
    ])
      .then(([pending, reviews]) =>
        setCounts({
          approvals: pending.requests.filter(
            (r) =>
              r.requester !== principal.name &&
              r.requires.approvals.some((s) => s.remaining > 0 && matchesPrincipal(principal, s.from)),
          ).length,
          reviews: reviews.reviews.filter((g) => g.user !== principal.name).length,
        }),
      )
      .catch(() => {});
  }, [api, principal]);
  useEffect(refresh, [refresh]);
  useLiveUpdates(
    (event) =>
      event.type.startsWith("request.") ||
      event.type.startsWith("review.") ||
      event.type === "grant.activated",
    refresh,
    30_000,
  );
  return counts;
}

export function Layout({ children }: { children: ReactNode }) {
  const { principal } = useSignedIn();
  const { signOut } = useSession();
  const { path } = useLocation();
  const status = useLiveStatus();
  const counts = useWorkCounts();
  const items: NavItem[] = [
    { href: "/map", label: "Zone map" },
    { href: "/requests/new", label: "Request access" },
    { href: "/my", label: "My access", also: ["/requests/", "/grants/"] },
    { href: "/approvals", label: "Approvals", count: counts.approvals },
    { href: "/reviews", label: "Reviews", count: counts.reviews },
  ];
  if (principal.isAdmin || principal.isAuditor) items.push({ href: "/audit", label: "Audit" });
  items.push({ href: "/drills", label: "Drills" });
  const current = (item: NavItem) =>
    path === item.href ||
    (item.href !== "/requests/new" && path.startsWith(`${item.href}/`)) ||
    (path !== "/requests/new" && (item.also ?? []).some((prefix) => path.startsWith(prefix)));
  const roles = [principal.isAdmin ? "administrator" : null, principal.isAuditor ? "auditor" : null].filter(
    Boolean,
  );

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link href="/map" className="brand">
          <span className="brand-mark" aria-hidden="true" /> Firebreak
        </Link>
        <nav aria-label="Main">
          <ul>
            {items.map((item) => (
              <li key={item.href}>
                <Link href={item.href} aria-current={current(item) ? "page" : undefined}>
                  {item.label}
                  {item.count ? (
                    <span className="count">
                      <span aria-hidden="true">{item.count}</span>
                      <span className="visually-hidden">, {item.count} waiting</span>
                    </span>
                  ) : null}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span
            className={`live-dot live-${status}`}
            role="img"
            aria-label={liveLabel(status)}
            title={liveLabel(status)}
          />
          <Link
            href="/account"
            className="who-name"
            aria-current={path === "/account" ? "page" : undefined}
            title="Your account and factors"
          >
            {principal.name}
            {roles.length > 0 ? <span className="who-roles"> · {roles.join(", ")}</span> : null}
          </Link>
          <button type="button" className="button subtle small" onClick={() => void signOut(null)}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}

function liveLabel(status: string): string {
  switch (status) {
    case "live":
      return "Live: changes appear as they happen";
    case "polling":
      return "Refreshing every few seconds";
    case "connecting":
    case "reconnecting":
      return "Connecting to live updates…";
    default:
      return "Live updates stopped";
  }
}
