import type { ReactNode } from "react";
import { useSession } from "./auth/session";
import { Loading, PageTitle } from "./components/common";
import { Layout } from "./components/Layout";
import { LiveProvider } from "./lib/live";
import { AccountPage } from "./pages/Account";
import { ApprovalsPage } from "./pages/Approvals";
import { AuditPage } from "./pages/Audit";
import { GrantDetailPage, RequestDetailPage } from "./pages/Details";
import { DrillsPage } from "./pages/Drills";
import { MapPage } from "./pages/MapPage";
import { MyAccessPage } from "./pages/MyAccess";
import { NewRequestPage } from "./pages/NewRequest";
import { ReviewsPage } from "./pages/Reviews";
import { SignInPage, safeNext } from "./pages/SignIn";
import { Link, Redirect, useLocation } from "./router";

const ID = /^[a-z]{3}_[a-z0-9]{8,40}$/;

function page(path: string): ReactNode {
  if (path === "/" || path === "") return <Redirect to="/map" />;
  if (path === "/map") return <MapPage />;
  if (path === "/requests/new") return <NewRequestPage />;
  if (path === "/my") return <MyAccessPage />;
  if (path === "/approvals") return <ApprovalsPage />;
  if (path === "/reviews") return <ReviewsPage />;
  if (path === "/drills") return <DrillsPage />;
  if (path === "/audit") return <AuditPage />;
  if (path === "/account") return <AccountPage />;
  const request = /^\/requests\/([^/]+)$/.exec(path)?.[1];
  if (request && ID.test(request)) return <RequestDetailPage key={request} id={request} />;
  const grant = /^\/grants\/([^/]+)$/.exec(path)?.[1];
  if (grant && ID.test(grant)) return <GrantDetailPage key={grant} id={grant} />;
  return <NotFound />;
}

function NotFound() {
  return (
    <>
      <PageTitle title="Not found">There is no such page</PageTitle>
      <p>
        Try the <Link href="/map">zone map</Link> or <Link href="/my">your requests and grants</Link>.
      </p>
    </>
  );
}

export function App() {
  const { state } = useSession();
  const location = useLocation();
  if (state.status === "loading") {
    return (
      <main id="main" className="sign-in">
        <Loading what="Firebreak" />
      </main>
    );
  }
  if (state.status === "signed-out") {
    if (location.path !== "/sign-in") {
      const next = location.href === "/" ? "" : `?next=${encodeURIComponent(location.href)}`;
      return <Redirect to={`/sign-in${next}`} />;
    }
    return <SignInPage />;
  }
  if (location.path === "/sign-in") {
    return <Redirect to={safeNext(location.query.get("next"))} />;
  }
  return (
    <LiveProvider>
      <Layout>{page(location.path)}</Layout>
    </LiveProvider>
  );
}
